//! Per-column statistics for dataset manifests: null count, min, max and a distinct-count
//! estimate (exact up to 1024 distinct values, HyperLogLog with 4096 registers beyond, ≈1.6 %
//! standard error).

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Float64Type};
use serde::{Deserialize, Serialize};

/// Statistics of one column over a whole dataset version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStats {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow displays it (`Int64`, `Utf8`, …).
    pub data_type: String,
    /// Nulls.
    pub null_count: u64,
    /// Smallest value (numbers, strings, booleans; NaN ignored); `None` for other types or when
    /// every value is null.
    pub min: Option<serde_json::Value>,
    /// Largest value, like `min`.
    pub max: Option<serde_json::Value>,
    /// Estimated number of distinct non-null values (exact up to 1024).
    pub distinct_estimate: Option<u64>,
}

const EXACT_LIMIT: usize = 1024;
const P: u32 = 12;
const M: usize = 1 << P;

/// The values in the exact set are already hashes: use them as they are.
#[derive(Debug, Default, Clone, Copy)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashSetOfHashes = HashSet<u64, BuildHasherDefault<Identity>>;

/// Distinct counting: exact while small, HyperLogLog once large.
#[derive(Debug, Clone)]
enum Distinct {
    Exact(HashSetOfHashes),
    Sketch(Box<[u8; M]>),
}

impl Distinct {
    fn insert(&mut self, hash: u64) {
        match self {
            Self::Exact(set) => {
                set.insert(hash);
                if set.len() > EXACT_LIMIT {
                    let mut regs = Box::new([0u8; M]);
                    for h in set.iter() {
                        hll_add(&mut regs, *h);
                    }
                    *self = Self::Sketch(regs);
                }
            }
            Self::Sketch(regs) => hll_add(regs, hash),
        }
    }

    fn estimate(&self) -> u64 {
        match self {
            Self::Exact(set) => set.len() as u64,
            Self::Sketch(regs) => {
                let m = M as f64;
                let alpha = 0.7213 / (1.0 + 1.079 / m);
                let sum: f64 = regs.iter().map(|r| 2f64.powi(-i32::from(*r))).sum();
                let raw = alpha * m * m / sum;
                let zeros = regs.iter().filter(|r| **r == 0).count();
                let e = if raw <= 2.5 * m && zeros > 0 {
                    m * (m / zeros as f64).ln()
                } else {
                    raw
                };
                e.round() as u64
            }
        }
    }
}

fn hll_add(regs: &mut [u8; M], hash: u64) {
    let idx = (hash >> (64 - P)) as usize;
    let rest = (hash << P) | (1 << (P - 1));
    let rho = rest.leading_zeros() as u8 + 1;
    if regs[idx] < rho {
        regs[idx] = rho;
    }
}

/// MurmurHash3's 64-bit finaliser: spreads any 64-bit input over all bits (what HyperLogLog
/// needs), deterministic across runs and builds.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// FNV-1a over the bytes, then [`mix`].
fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
    }
    mix(h ^ bytes.len() as u64)
}

#[derive(Debug, Clone, PartialEq)]
enum Extreme {
    Num(f64),
    Str(String),
    Bool(bool),
}

impl Extreme {
    fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Num(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => serde_json::json!(*n as i64),
            Self::Num(n) => serde_json::json!(n),
            Self::Str(s) => serde_json::json!(s),
            Self::Bool(b) => serde_json::json!(b),
        }
    }

    fn less(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Num(a), Self::Num(b)) => a < b,
            (Self::Str(a), Self::Str(b)) => a < b,
            (Self::Bool(a), Self::Bool(b)) => !a & b,
            _ => false,
        }
    }
}

/// Accumulates [`ColumnStats`] batch by batch.
#[derive(Debug, Clone)]
pub(crate) struct StatsBuilder {
    name: String,
    data_type: DataType,
    nulls: u64,
    min: Option<Extreme>,
    max: Option<Extreme>,
    distinct: Option<Distinct>,
}

impl StatsBuilder {
    pub(crate) fn new(name: &str, data_type: &DataType) -> Self {
        Self {
            name: name.to_owned(),
            data_type: data_type.clone(),
            nulls: 0,
            min: None,
            max: None,
            distinct: Some(Distinct::Exact(HashSetOfHashes::default())),
        }
    }

    fn see(&mut self, v: Extreme) {
        if self.min.as_ref().is_none_or(|m| v.less(m)) {
            self.min = Some(v.clone());
        }
        if self.max.as_ref().is_none_or(|m| m.less(&v)) {
            self.max = Some(v);
        }
    }

    fn count(&mut self, hash: u64) {
        if let Some(d) = self.distinct.as_mut() {
            d.insert(hash);
        }
    }

    pub(crate) fn update(&mut self, array: &dyn Array) {
        self.nulls += array.null_count() as u64;
        let dt = array.data_type();
        if dt.is_numeric()
            && let Ok(f) = cast(array, &DataType::Float64)
        {
            let f = f.as_primitive::<Float64Type>();
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for v in f.iter().flatten() {
                self.count(mix(v.to_bits()));
                // NaN fails both comparisons and is skipped.
                if v < lo {
                    lo = v;
                }
                if v > hi {
                    hi = v;
                }
            }
            if lo <= hi {
                self.see(Extreme::Num(lo));
                self.see(Extreme::Num(hi));
            }
            return;
        }
        match dt {
            DataType::Boolean => {
                for v in array.as_boolean().iter().flatten() {
                    self.count(mix(u64::from(v)));
                    self.see(Extreme::Bool(v));
                }
            }
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                if let Ok(s) = cast(array, &DataType::Utf8) {
                    let (mut lo, mut hi): (Option<&str>, Option<&str>) = (None, None);
                    for v in s.as_string::<i32>().iter().flatten() {
                        self.count(hash_bytes(v.as_bytes()));
                        if lo.is_none_or(|l| v < l) {
                            lo = Some(v);
                        }
                        if hi.is_none_or(|h| v > h) {
                            hi = Some(v);
                        }
                    }
                    for v in [lo, hi].into_iter().flatten() {
                        self.see(Extreme::Str(v.to_owned()));
                    }
                }
            }
            _ => match cast(array, &DataType::Utf8) {
                // Dates, timestamps, dictionaries…: distinct values through their text form.
                Ok(s) => {
                    for v in s.as_string::<i32>().iter().flatten() {
                        self.count(hash_bytes(v.as_bytes()));
                    }
                }
                Err(_) => self.distinct = None,
            },
        }
    }

    pub(crate) fn finish(self) -> ColumnStats {
        ColumnStats {
            name: self.name,
            data_type: self.data_type.to_string(),
            null_count: self.nulls,
            min: self.min.as_ref().map(Extreme::to_json),
            max: self.max.as_ref().map(Extreme::to_json),
            distinct_estimate: self.distinct.as_ref().map(Distinct::estimate),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Float64Array, Int32Array, StringArray};

    use super::*;

    #[test]
    fn numbers_strings_and_booleans() {
        let mut s = StatsBuilder::new("x", &DataType::Int32);
        s.update(&Int32Array::from(vec![Some(3), None, Some(-2), Some(3)]));
        s.update(&Int32Array::from(vec![Some(10)]));
        let st = s.finish();
        assert_eq!(st.null_count, 1);
        assert_eq!(st.min, Some(serde_json::json!(-2)));
        assert_eq!(st.max, Some(serde_json::json!(10)));
        assert_eq!(st.distinct_estimate, Some(3));

        let mut s = StatsBuilder::new("f", &DataType::Float64);
        s.update(&Float64Array::from(vec![0.5, f64::NAN, -1.25]));
        let st = s.finish();
        assert_eq!(
            (st.min, st.max),
            (Some(serde_json::json!(-1.25)), Some(serde_json::json!(0.5)))
        );

        let mut s = StatsBuilder::new("s", &DataType::Utf8);
        s.update(&StringArray::from(vec!["pear", "apple", "pear"]));
        let st = s.finish();
        assert_eq!(st.min, Some(serde_json::json!("apple")));
        assert_eq!(st.distinct_estimate, Some(2));

        let mut s = StatsBuilder::new("b", &DataType::Boolean);
        s.update(&BooleanArray::from(vec![true, true]));
        let st = s.finish();
        assert_eq!(
            (st.min.clone(), st.max),
            (Some(serde_json::json!(true)), Some(serde_json::json!(true)))
        );
        let _ = Arc::new(0);
    }

    #[test]
    fn distinct_estimates_are_close_for_large_sets() {
        let mut s = StatsBuilder::new("x", &DataType::Int64);
        let values: Vec<i32> = (0..200_000).map(|i| i % 50_000).collect();
        s.update(&Int32Array::from(values));
        let est = s.finish().distinct_estimate.unwrap() as f64;
        assert!((est - 50_000.0).abs() / 50_000.0 < 0.05, "estimate {est}");
    }
}
