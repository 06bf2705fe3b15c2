//! Feature values and their encodings in the online store: entity keys (join-key values in
//! order) and rows (feature values in the layout's order).
//!
//! Key: per join key a tag and the value — integers of any width as `0x01` + i64 big-endian
//! (so `int32` entity values find `int64` rows), strings `0x02` + u32 length + UTF-8, booleans
//! `0x03` + one byte, bytes `0x04` + u32 length + bytes. Row: per feature `0x00` (null) or a tag
//! and the value in little-endian (`0x01` i64, `0x02` i32, `0x03` f64, `0x04` f32, `0x05`
//! string, `0x06` bool, `0x07` bytes, `0x08` timestamp as µs).

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type,
};
use bytes::{BufMut, Bytes, BytesMut};
use mlops_core::{Error, Result};
use serde::{Deserialize, Serialize};

use crate::definitions::ValueType;

/// One feature or join-key value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum FeatureValue {
    /// Missing.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 32-bit integer.
    Int32(i32),
    /// A 64-bit integer.
    Int64(i64),
    /// A 32-bit float.
    Float32(f32),
    /// A 64-bit float.
    Float64(f64),
    /// A string.
    String(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A timestamp, µs since the epoch (UTC).
    Timestamp(i64),
}

impl FeatureValue {
    /// Whether it is [`FeatureValue::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    /// Value `row` of an Arrow column.
    pub fn from_arrow(col: &ArrayRef, row: usize) -> Result<Self> {
        if col.is_null(row) {
            return Ok(Self::Null);
        }
        Ok(match col.data_type() {
            DataType::Boolean => Self::Bool(col.as_boolean().value(row)),
            DataType::Int8 => Self::Int32(i32::from(col.as_primitive::<Int8Type>().value(row))),
            DataType::Int16 => Self::Int32(i32::from(col.as_primitive::<Int16Type>().value(row))),
            DataType::Int32 => Self::Int32(col.as_primitive::<Int32Type>().value(row)),
            DataType::Int64 => Self::Int64(col.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => Self::Int64(i64::from(col.as_primitive::<UInt8Type>().value(row))),
            DataType::UInt16 => Self::Int64(i64::from(col.as_primitive::<UInt16Type>().value(row))),
            DataType::UInt32 => Self::Int64(i64::from(col.as_primitive::<UInt32Type>().value(row))),
            DataType::Float32 => Self::Float32(col.as_primitive::<Float32Type>().value(row)),
            DataType::Float64 => Self::Float64(col.as_primitive::<Float64Type>().value(row)),
            DataType::Utf8 => Self::String(col.as_string::<i32>().value(row).to_owned()),
            DataType::LargeUtf8 => Self::String(col.as_string::<i64>().value(row).to_owned()),
            DataType::Utf8View => Self::String(col.as_string_view().value(row).to_owned()),
            DataType::Binary => Self::Bytes(col.as_binary::<i32>().value(row).to_vec()),
            DataType::LargeBinary => Self::Bytes(col.as_binary::<i64>().value(row).to_vec()),
            DataType::Timestamp(unit, _) => {
                let v = match unit {
                    TimeUnit::Second => col
                        .as_primitive::<TimestampSecondType>()
                        .value(row)
                        .saturating_mul(1_000_000),
                    TimeUnit::Millisecond => col
                        .as_primitive::<TimestampMillisecondType>()
                        .value(row)
                        .saturating_mul(1_000),
                    TimeUnit::Microsecond => {
                        col.as_primitive::<TimestampMicrosecondType>().value(row)
                    }
                    TimeUnit::Nanosecond => {
                        col.as_primitive::<TimestampNanosecondType>().value(row) / 1_000
                    }
                };
                Self::Timestamp(v)
            }
            other => {
                return Err(Error::not_supported(
                    "feature type",
                    other.to_string(),
                    "online features are booleans, integers, floats, strings, bytes or timestamps",
                ));
            }
        })
    }

    /// A column of values as an Arrow array of their natural type: `Int64` for integers,
    /// `Float64` once a float appears among numbers, `Utf8`, `Boolean`, `Binary`, or
    /// `Timestamp(µs, UTC)`; all nulls make a `Null` array. Mixed kinds are
    /// [`Error::InvalidArgument`] naming `column`.
    pub fn to_arrow(values: &[Self], column: &str) -> Result<ArrayRef> {
        use arrow::array::{
            BinaryArray, BooleanArray, Float64Array, Int64Array, NullArray, StringArray,
            TimestampMicrosecondArray,
        };
        use std::sync::Arc;
        #[derive(PartialEq, Clone, Copy)]
        enum Kind {
            Int,
            Float,
            Str,
            Bool,
            Bin,
            Ts,
        }
        let kind_of = |v: &Self| match v {
            Self::Null => None,
            Self::Int32(_) | Self::Int64(_) => Some(Kind::Int),
            Self::Float32(_) | Self::Float64(_) => Some(Kind::Float),
            Self::String(_) => Some(Kind::Str),
            Self::Bool(_) => Some(Kind::Bool),
            Self::Bytes(_) => Some(Kind::Bin),
            Self::Timestamp(_) => Some(Kind::Ts),
        };
        let mut kind = None;
        for (row, v) in values.iter().enumerate() {
            let Some(k) = kind_of(v) else { continue };
            kind = match (kind, k) {
                (None, k) => Some(k),
                (Some(a), b) if a == b => Some(a),
                (Some(Kind::Int | Kind::Float), Kind::Int | Kind::Float) => Some(Kind::Float),
                (Some(_), _) => {
                    return Err(Error::invalid(
                        "column",
                        format!("{column}[{row}] is {v:?}, unlike the column's earlier values"),
                    ));
                }
            };
        }
        let float = |v: &Self| match v {
            Self::Int32(i) => Some(f64::from(*i)),
            Self::Int64(i) => Some(*i as f64),
            Self::Float32(f) => Some(f64::from(*f)),
            Self::Float64(f) => Some(*f),
            _ => None,
        };
        Ok(match kind {
            None => Arc::new(NullArray::new(values.len())),
            Some(Kind::Int) => Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
                Self::Int32(i) => Some(i64::from(*i)),
                Self::Int64(i) => Some(*i),
                _ => None,
            }))),
            Some(Kind::Float) => Arc::new(Float64Array::from_iter(values.iter().map(float))),
            Some(Kind::Str) => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                Self::String(s) => Some(s.as_str()),
                _ => None,
            }))),
            Some(Kind::Bool) => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
                Self::Bool(b) => Some(*b),
                _ => None,
            }))),
            Some(Kind::Bin) => Arc::new(BinaryArray::from_iter(values.iter().map(|v| match v {
                Self::Bytes(b) => Some(b.as_slice()),
                _ => None,
            }))),
            Some(Kind::Ts) => Arc::new(
                TimestampMicrosecondArray::from_iter(values.iter().map(|v| match v {
                    Self::Timestamp(t) => Some(*t),
                    _ => None,
                }))
                .with_timezone("UTC"),
            ),
        })
    }

    /// A JSON value as a value of `dtype` (what HTTP requests carry); `None` when it does not
    /// fit.
    pub fn from_json(v: &serde_json::Value, dtype: ValueType) -> Option<Self> {
        use serde_json::Value as J;
        Some(match (v, dtype) {
            (J::Null, _) => Self::Null,
            (J::Bool(b), ValueType::Bool) => Self::Bool(*b),
            (J::Number(n), ValueType::Int32) => Self::Int32(i32::try_from(n.as_i64()?).ok()?),
            (J::Number(n), ValueType::Int64) => Self::Int64(n.as_i64()?),
            // Large integers arrive as strings from clients that fear float precision.
            (J::String(s), ValueType::Int64) => Self::Int64(s.parse().ok()?),
            (J::String(s), ValueType::Int32) => Self::Int32(s.parse().ok()?),
            (J::Number(n), ValueType::Float32) => Self::Float32(n.as_f64()? as f32),
            (J::Number(n), ValueType::Float64) => Self::Float64(n.as_f64()?),
            (J::String(s), ValueType::String) => Self::String(s.clone()),
            (J::String(s), ValueType::Bytes) => Self::Bytes(s.as_bytes().to_vec()),
            (J::Number(n), ValueType::UnixTimestamp) => {
                Self::Timestamp(n.as_i64()?.saturating_mul(1_000_000))
            }
            _ => return None,
        })
    }

    /// As JSON: numbers, strings, booleans, null; bytes as a string (lossy UTF-8) and
    /// timestamps as seconds.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Self::Null => J::Null,
            Self::Bool(b) => J::Bool(*b),
            Self::Int32(v) => J::from(*v),
            Self::Int64(v) => J::from(*v),
            Self::Float32(v) => {
                serde_json::Number::from_f64(f64::from(*v)).map_or(J::Null, J::Number)
            }
            Self::Float64(v) => serde_json::Number::from_f64(*v).map_or(J::Null, J::Number),
            Self::String(s) => J::String(s.clone()),
            Self::Bytes(b) => J::String(String::from_utf8_lossy(b).into_owned()),
            Self::Timestamp(us) => J::from(us.div_euclid(1_000_000)),
        }
    }
}

/// Appends one join-key value to an encoded key; `None` for a null (a key with a null never
/// matches), an error for a type that cannot be a join key.
pub fn push_key(out: &mut BytesMut, v: &FeatureValue) -> Result<Option<()>> {
    match v {
        FeatureValue::Null => return Ok(None),
        FeatureValue::Int32(i) => {
            out.put_u8(0x01);
            out.put_i64(i64::from(*i));
        }
        FeatureValue::Int64(i) => {
            out.put_u8(0x01);
            out.put_i64(*i);
        }
        FeatureValue::String(s) => {
            out.put_u8(0x02);
            put_len(out, s.len())?;
            out.put_slice(s.as_bytes());
        }
        FeatureValue::Bool(b) => {
            out.put_u8(0x03);
            out.put_u8(u8::from(*b));
        }
        FeatureValue::Bytes(b) => {
            out.put_u8(0x04);
            put_len(out, b.len())?;
            out.put_slice(b);
        }
        FeatureValue::Timestamp(_) | FeatureValue::Float32(_) | FeatureValue::Float64(_) => {
            return Err(Error::invalid(
                "join key",
                format!("{v:?} cannot be a join key (integers, strings, booleans or bytes)"),
            ));
        }
    }
    Ok(Some(()))
}

/// Appends the join-key values of `row` straight from Arrow columns (the encoding of
/// [`push_key`], without building values); `false` when one is null.
pub fn push_key_arrow(cols: &[ArrayRef], row: usize, out: &mut Vec<u8>) -> Result<bool> {
    for col in cols {
        if col.is_null(row) {
            return Ok(false);
        }
        let int = |v: i64, out: &mut Vec<u8>| {
            out.push(0x01);
            out.extend_from_slice(&v.to_be_bytes());
        };
        let bytes = |b: &[u8], tag: u8, out: &mut Vec<u8>| -> Result<()> {
            out.push(tag);
            let n =
                u32::try_from(b.len()).map_err(|_| Error::invalid("value", "longer than 4 GiB"))?;
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(b);
            Ok(())
        };
        match col.data_type() {
            DataType::Int64 => int(col.as_primitive::<Int64Type>().value(row), out),
            DataType::Int32 => int(i64::from(col.as_primitive::<Int32Type>().value(row)), out),
            DataType::Utf8 => bytes(col.as_string::<i32>().value(row).as_bytes(), 0x02, out)?,
            DataType::LargeUtf8 => bytes(col.as_string::<i64>().value(row).as_bytes(), 0x02, out)?,
            DataType::Binary => bytes(col.as_binary::<i32>().value(row), 0x04, out)?,
            DataType::Boolean => {
                out.push(0x03);
                out.push(u8::from(col.as_boolean().value(row)));
            }
            _ => {
                let mut buf = BytesMut::new();
                if push_key(&mut buf, &FeatureValue::from_arrow(col, row)?)?.is_none() {
                    return Ok(false);
                }
                out.extend_from_slice(&buf);
            }
        }
    }
    Ok(true)
}

fn put_len(out: &mut BytesMut, n: usize) -> Result<()> {
    out.put_u32(u32::try_from(n).map_err(|_| Error::invalid("value", "longer than 4 GiB"))?);
    Ok(())
}

/// Appends one feature value to an encoded row.
pub fn push_value(out: &mut BytesMut, v: &FeatureValue) -> Result<()> {
    match v {
        FeatureValue::Null => out.put_u8(0x00),
        FeatureValue::Int64(i) => {
            out.put_u8(0x01);
            out.put_i64_le(*i);
        }
        FeatureValue::Int32(i) => {
            out.put_u8(0x02);
            out.put_i32_le(*i);
        }
        FeatureValue::Float64(f) => {
            out.put_u8(0x03);
            out.put_f64_le(*f);
        }
        FeatureValue::Float32(f) => {
            out.put_u8(0x04);
            out.put_f32_le(*f);
        }
        FeatureValue::String(s) => {
            out.put_u8(0x05);
            put_len(out, s.len())?;
            out.put_slice(s.as_bytes());
        }
        FeatureValue::Bool(b) => {
            out.put_u8(0x06);
            out.put_u8(u8::from(*b));
        }
        FeatureValue::Bytes(b) => {
            out.put_u8(0x07);
            put_len(out, b.len())?;
            out.put_slice(b);
        }
        FeatureValue::Timestamp(us) => {
            out.put_u8(0x08);
            out.put_i64_le(*us);
        }
    }
    Ok(())
}

fn corrupt(what: &str) -> Error {
    Error::corrupt("online row", "online store", what.to_owned())
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
    if buf.len() < n {
        return Err(corrupt("a value runs past the row's end"));
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N]> {
    let s = take(buf, N)?;
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    Ok(a)
}

/// Decodes `n` feature values of a row.
pub fn decode_values(mut buf: &[u8], n: usize) -> Result<Vec<FeatureValue>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let tag = take_array::<1>(&mut buf)?[0];
        out.push(match tag {
            0x00 => FeatureValue::Null,
            0x01 => FeatureValue::Int64(i64::from_le_bytes(take_array(&mut buf)?)),
            0x02 => FeatureValue::Int32(i32::from_le_bytes(take_array(&mut buf)?)),
            0x03 => FeatureValue::Float64(f64::from_le_bytes(take_array(&mut buf)?)),
            0x04 => FeatureValue::Float32(f32::from_le_bytes(take_array(&mut buf)?)),
            0x05 | 0x07 => {
                let len = u32::from_be_bytes(take_array(&mut buf)?) as usize;
                let bytes = take(&mut buf, len)?;
                if tag == 0x05 {
                    FeatureValue::String(
                        std::str::from_utf8(bytes)
                            .map_err(|_| corrupt("a string is not UTF-8"))?
                            .to_owned(),
                    )
                } else {
                    FeatureValue::Bytes(bytes.to_vec())
                }
            }
            0x06 => FeatureValue::Bool(take_array::<1>(&mut buf)?[0] != 0),
            0x08 => FeatureValue::Timestamp(i64::from_le_bytes(take_array(&mut buf)?)),
            _ => return Err(corrupt("unknown value tag")),
        });
    }
    if !buf.is_empty() {
        return Err(corrupt("bytes left after the row's values"));
    }
    Ok(out)
}

/// An encoded key from values; `None` when one is null.
pub fn encode_key(values: &[FeatureValue]) -> Result<Option<Bytes>> {
    let mut out = BytesMut::with_capacity(16 * values.len());
    for v in values {
        if push_key(&mut out, v)?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(out.freeze()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn rows_round_trip_and_damage_is_corrupt() {
        let values = vec![
            FeatureValue::Null,
            FeatureValue::Int64(-5),
            FeatureValue::Int32(7),
            FeatureValue::Float64(1.5),
            FeatureValue::Float32(2.5),
            FeatureValue::String("héllo".into()),
            FeatureValue::Bool(true),
            FeatureValue::Bytes(vec![0, 1, 255]),
            FeatureValue::Timestamp(1_700_000_000_000_000),
        ];
        let mut buf = BytesMut::new();
        for v in &values {
            push_value(&mut buf, v).unwrap();
        }
        assert_eq!(decode_values(&buf, values.len()).unwrap(), values);
        assert!(
            decode_values(&buf[..buf.len() - 1], values.len())
                .unwrap_err()
                .is_corrupt()
        );
        assert!(
            decode_values(&buf, values.len() - 1)
                .unwrap_err()
                .is_corrupt()
        );
    }

    #[test]
    fn integer_keys_match_across_widths_and_nulls_never_match() {
        let a = encode_key(&[FeatureValue::Int32(5), FeatureValue::String("x".into())]).unwrap();
        let b = encode_key(&[FeatureValue::Int64(5), FeatureValue::String("x".into())]).unwrap();
        assert_eq!(a, b);
        assert_eq!(encode_key(&[FeatureValue::Null]).unwrap(), None);
        assert!(encode_key(&[FeatureValue::Float64(1.0)]).is_err());
        // "ab" + "c" and "a" + "bc" differ: lengths are part of the key.
        let x = encode_key(&[
            FeatureValue::String("ab".into()),
            FeatureValue::String("c".into()),
        ]);
        let y = encode_key(&[
            FeatureValue::String("a".into()),
            FeatureValue::String("bc".into()),
        ]);
        assert_ne!(x.unwrap(), y.unwrap());
    }

    #[test]
    fn keys_from_arrow_equal_keys_from_values() {
        use std::sync::Arc;
        let cols: Vec<ArrayRef> = vec![
            Arc::new(arrow::array::Int32Array::from(vec![Some(5), None])),
            Arc::new(arrow::array::StringArray::from(vec!["x", "y"])),
            Arc::new(arrow::array::BooleanArray::from(vec![true, false])),
            Arc::new(arrow::array::UInt16Array::from(vec![7, 8])),
        ];
        let mut key = Vec::new();
        assert!(push_key_arrow(&cols, 0, &mut key).unwrap());
        let values: Vec<FeatureValue> = cols
            .iter()
            .map(|c| FeatureValue::from_arrow(c, 0).unwrap())
            .collect();
        assert_eq!(key, encode_key(&values).unwrap().unwrap().to_vec());
        key.clear();
        assert!(!push_key_arrow(&cols, 1, &mut key).unwrap(), "a null key");
    }
}
