//! Point-in-time-correct joins: Feast's `get_historical_features` over Arrow.
//!
//! For each entity row with time `T` and each feature view, the selected feature row has the
//! same join keys, `event_ts <= T`, `event_ts >= T - ttl` when the view has a ttl, and (with
//! [`HistoricalOptions::filter_by_created_timestamp`]) `created_ts <= T`; among those the
//! latest `event_ts` wins, ties broken by the latest `created_ts` (and then by the later row of
//! the source). Every entity row is kept, in its order, with nulls where nothing matched: a
//! left join. Extra entity columns (labels) pass through.
//!
//! The join is a sort-merge: each view's rows are sorted by (join keys, event time, created
//! time) once, the entity rows by (join keys, time), and one pass over both picks each row's
//! match, so the cost is `O((n + m) log(n + m))` per view and views run in parallel. Keys of any
//! Arrow type are compared through Arrow's row format. [`FeatureStore::get_historical_features`]
//! streams each source through a reducer first that keeps only the rows able to answer some
//! entity row (at most one per entity row), so memory is bounded by the entity rows, not by the
//! sources' history.
//!
//! [`FeatureStore::get_historical_features`]: crate::FeatureStore::get_historical_features

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{
    DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow::row::{RowConverter, SortField};
use mlops_core::{Error, Result};
use rayon::prelude::*;

use crate::definitions::{ValueType, ViewRequest};

/// The column Feast reads entity rows' time from when present.
pub const EVENT_TIMESTAMP: &str = "event_timestamp";

/// Options of a historical retrieval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistoricalOptions {
    /// Name result columns `<view>__<feature>` instead of `<feature>`.
    pub full_feature_names: bool,
    /// Also require `created_ts <= T` (Feast 0.66's `filter_by_created_timestamp`).
    pub filter_by_created_timestamp: bool,
}

impl HistoricalOptions {
    /// Names result columns `<view>__<feature>`.
    pub fn with_full_feature_names(mut self, on: bool) -> Self {
        self.full_feature_names = on;
        self
    }

    /// Requires rows to have been created by the entity row's time.
    pub fn with_filter_by_created_timestamp(mut self, on: bool) -> Self {
        self.filter_by_created_timestamp = on;
        self
    }
}

/// A view's request with its source's rows (projected or not; extra columns are ignored).
#[derive(Debug, Clone)]
pub struct ViewTable {
    /// The view, its join keys and the features wanted (a non-empty list).
    pub request: ViewRequest,
    /// The source's rows.
    pub rows: RecordBatch,
}

/// The entity rows' time column, by Feast's rule: `event_timestamp` when present, else the only
/// timestamp column, else an error.
pub fn entity_timestamp_column(schema: &Schema) -> Result<String> {
    if let Ok(f) = schema.field_with_name(EVENT_TIMESTAMP) {
        return match f.data_type() {
            DataType::Timestamp(_, _) => Ok(EVENT_TIMESTAMP.to_owned()),
            other => Err(Error::invalid(
                "entity rows",
                format!("column {EVENT_TIMESTAMP} is {other}, not a timestamp"),
            )),
        };
    }
    let stamps: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| matches!(f.data_type(), DataType::Timestamp(_, _)))
        .map(|f| f.name().as_str())
        .collect();
    match stamps.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Error::invalid(
            "entity rows",
            format!("the entity rows have no {EVENT_TIMESTAMP} column and no timestamp column"),
        )),
        many => Err(Error::invalid(
            "entity rows",
            format!(
                "the entity rows have no {EVENT_TIMESTAMP} column and several timestamp columns \
                 ({}); name one {EVENT_TIMESTAMP}",
                many.join(", ")
            ),
        )),
    }
}

/// The name a feature takes in results.
pub fn output_name(view: &str, feature: &str, full_feature_names: bool) -> String {
    if full_feature_names {
        format!("{view}__{feature}")
    } else {
        feature.to_owned()
    }
}

/// Joins each view's features onto the entity rows, point in time correct (see the module
/// docs). The result has the entity columns, then each view's features in request order.
pub fn point_in_time_join(
    entity: &RecordBatch,
    views: &[ViewTable],
    options: HistoricalOptions,
) -> Result<RecordBatch> {
    let ts_name = entity_timestamp_column(&entity.schema())?;
    let ts_col = entity.column(entity.schema().index_of(&ts_name).map_err(arrow_err)?);
    let entity_ts = timestamps_ns(ts_col, &format!("entity column {ts_name}"))?;
    if let Some(row) = entity_ts.iter().position(Option::is_none) {
        return Err(Error::invalid(
            "entity rows",
            format!("entity row {row} has a null {ts_name}"),
        ));
    }
    let entity_ts: Vec<i64> = entity_ts.into_iter().map(|t| t.unwrap_or(0)).collect();

    // Result names: entity columns, then features; a collision is an error, as in Feast.
    let mut names: BTreeSet<String> = entity
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut out_fields: Vec<Arc<ArrowField>> = entity.schema().fields().iter().cloned().collect();
    for v in views {
        if v.request.features.is_empty() {
            return Err(Error::invalid(
                "features",
                format!("no features requested from view {}", v.request.view.name),
            ));
        }
        for f in &v.request.features {
            let name = output_name(&v.request.view.name, f, options.full_feature_names);
            if !names.insert(name.clone()) {
                return Err(Error::invalid(
                    "features",
                    format!(
                        "result column {name} (from {}:{f}) collides with another column; \
                         request full feature names",
                        v.request.view.name
                    ),
                ));
            }
        }
    }

    let columns: Vec<Vec<(ArrowField, ArrayRef)>> = views
        .par_iter()
        .map(|v| join_view(entity, &entity_ts, v, options))
        .collect::<Result<_>>()?;
    let mut arrays: Vec<ArrayRef> = entity.columns().to_vec();
    for (field, array) in columns.into_iter().flatten() {
        out_fields.push(Arc::new(field));
        arrays.push(array);
    }
    RecordBatch::try_new(Arc::new(Schema::new(out_fields)), arrays).map_err(arrow_err)
}

/// One view: the matched source row of every entity row, then the features taken from it.
fn join_view(
    entity: &RecordBatch,
    entity_ts: &[i64],
    view: &ViewTable,
    options: HistoricalOptions,
) -> Result<Vec<(ArrowField, ArrayRef)>> {
    let req = &view.request;
    let rows = &view.rows;
    let name = &req.view.name;
    let source_col = |col: &str, what: &str| -> Result<ArrayRef> {
        let i = rows.schema().index_of(col).map_err(|_| {
            Error::invalid(
                "source",
                format!(
                    "source {} of view {name} has no {what} column {col}",
                    req.source.name
                ),
            )
        })?;
        Ok(rows.column(i).clone())
    };
    let event = timestamps_ns(
        &source_col(&req.source.timestamp_field, "timestamp_field")?,
        &format!("{}.{}", req.source.name, req.source.timestamp_field),
    )?;
    let created = match &req.source.created_timestamp_column {
        Some(c) => Some(timestamps_ns(
            &source_col(c, "created_timestamp_column")?,
            &format!("{}.{c}", req.source.name),
        )?),
        None => None,
    };

    // Keys: the source's types rule; entity columns are cast to them where that is lossless.
    let mut source_keys = Vec::with_capacity(req.join_keys.len());
    let mut entity_keys = Vec::with_capacity(req.join_keys.len());
    for k in &req.join_keys {
        let s = source_col(k, "join key")?;
        let e = entity_key(entity, k, s.data_type(), name)?;
        source_keys.push(s);
        entity_keys.push(e);
    }
    let keys = Keys::new(
        &source_keys,
        &entity_keys,
        rows.num_rows(),
        entity.num_rows(),
    )?;

    // Source rows with a null key or event time never match.
    let mut order: Vec<u32> = (0..rows.num_rows())
        .filter(|&i| event[i].is_some() && !keys.source_null(i))
        .map(index_u32)
        .collect::<Result<_>>()?;
    let ev = |i: u32| event[i as usize].unwrap_or(i64::MIN);
    let cr = |i: u32| {
        created
            .as_ref()
            .and_then(|c| c[i as usize])
            .unwrap_or(i64::MIN)
    };
    order.par_sort_unstable_by_key(|&i| (keys.source[i as usize], ev(i), cr(i), i));
    let mut entity_order: Vec<u32> = (0..entity.num_rows())
        .map(index_u32)
        .collect::<Result<_>>()?;
    entity_order
        .par_sort_unstable_by_key(|&i| (keys.entity_key(i as usize), entity_ts[i as usize]));

    let ttl_ns =
        match req.view.ttl {
            Some(ttl) => Some(i64::try_from(ttl.as_nanos()).map_err(|_| {
                Error::invalid("ttl", format!("the ttl of view {name} is too large"))
            })?),
            None => None,
        };
    let mut matched: Vec<Option<u32>> = vec![None; entity.num_rows()];
    let mut f = 0usize; // the first source row (in `order`) whose key may still match
    let mut e = 0usize;
    while e < entity_order.len() {
        let first = entity_order[e] as usize;
        // The run of entity rows with this key.
        let mut e_end = e + 1;
        let group = keys.entity_key(first);
        while e_end < entity_order.len() && keys.entity_key(entity_order[e_end] as usize) == group {
            e_end += 1;
        }
        if group.0 {
            // Null or unknown keys sort last: nothing after them can match.
            break;
        }
        let id = group.1;
        while f < order.len() && keys.source[order[f] as usize] < id {
            f += 1;
        }
        let g0 = f;
        let mut g1 = g0;
        while g1 < order.len() && keys.source[order[g1] as usize] == id {
            g1 += 1;
        }
        // Entity rows of this key ascend in time, so the first row later than T only moves on.
        let mut p = g0;
        for &row in &entity_order[e..e_end] {
            let t = entity_ts[row as usize];
            while p < g1 && ev(order[p]) <= t {
                p += 1;
            }
            let mut pick = None;
            let mut q = p;
            while q > g0 {
                q -= 1;
                let cand = order[q];
                if !options.filter_by_created_timestamp || created.is_none() || cr(cand) <= t {
                    pick = Some(cand);
                    break;
                }
            }
            if let (Some(c), Some(ttl)) = (pick, ttl_ns)
                && ev(c) < t.saturating_sub(ttl)
            {
                pick = None;
            }
            matched[row as usize] = pick;
        }
        f = g1;
        e = e_end;
    }

    let indices = UInt32Array::from(matched);
    let mut out = Vec::with_capacity(req.features.len());
    for feature in &req.features {
        let col = source_col(feature, "feature")?;
        let declared = req
            .view
            .schema
            .iter()
            .find(|f| f.name == *feature)
            .map(|f| f.dtype);
        let col = match declared {
            Some(dtype) => cast_feature(&col, dtype, name, feature)?,
            None => col,
        };
        let values = take(col.as_ref(), &indices, None).map_err(arrow_err)?;
        let field = ArrowField::new(
            output_name(name, feature, options.full_feature_names),
            values.data_type().clone(),
            true,
        );
        out.push((field, values));
    }
    Ok(out)
}

fn index_u32(i: usize) -> Result<u32> {
    u32::try_from(i).map_err(|_| Error::invalid("rows", "more than 4 294 967 295 rows in one join"))
}

/// A source column cast to a feature's declared type; values that do not fit are an error.
pub(crate) fn cast_feature(
    col: &ArrayRef,
    dtype: ValueType,
    view: &str,
    feature: &str,
) -> Result<ArrayRef> {
    let target = dtype.arrow_type();
    if col.data_type() == &target {
        return Ok(col.clone());
    }
    let compatible = ValueType::of_arrow(col.data_type()).is_some_and(|have| {
        have == dtype
            || matches!(
                (have, dtype),
                (ValueType::Int32, ValueType::Int64)
                    | (ValueType::Int32 | ValueType::Int64, ValueType::Float64)
                    | (ValueType::Float32, ValueType::Float64)
            )
    });
    if !compatible {
        return Err(Error::invalid(
            "feature",
            format!(
                "feature {view}:{feature} is declared {dtype:?} but its source column is {}",
                col.data_type()
            ),
        ));
    }
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(col, &target, &options).map_err(|e| {
        Error::invalid(
            "feature",
            format!("feature {view}:{feature} does not fit {dtype:?}: {e}"),
        )
    })
}

/// An entity key column in the source's type.
pub(crate) fn entity_key(
    entity: &RecordBatch,
    key: &str,
    source_type: &DataType,
    view: &str,
) -> Result<ArrayRef> {
    let i = entity.schema().index_of(key).map_err(|_| {
        Error::invalid(
            "entity rows",
            format!("the entity rows have no join key column {key} (view {view} needs it)"),
        )
    })?;
    let col = entity.column(i);
    if col.data_type() == source_type {
        return Ok(col.clone());
    }
    let (have, want) = (
        ValueType::of_arrow(col.data_type()),
        ValueType::of_arrow(source_type),
    );
    let integers = |v: Option<ValueType>| matches!(v, Some(ValueType::Int32 | ValueType::Int64));
    let same_kind = (integers(have) && integers(want))
        || (have.is_some()
            && have == want
            && !matches!(have, Some(ValueType::Float32 | ValueType::Float64)));
    if !same_kind {
        return Err(Error::invalid(
            "entity rows",
            format!(
                "join key {key} is {} in the entity rows but {source_type} in the source of view {view}",
                col.data_type()
            ),
        ));
    }
    let options = arrow::compute::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow::compute::cast_with_options(col, source_type, &options).map_err(|e| {
        Error::invalid(
            "entity rows",
            format!("join key {key} does not fit the source's {source_type}: {e}"),
        )
    })
}

/// Join keys of both sides as ids that are equal exactly when the keys are: a single integer
/// key is its own id; other keys (strings, several columns) go through Arrow's row format and
/// a hash map of the source's distinct keys. Entity rows whose key the source lacks, and rows
/// with a null key, never match. A view without entities joins on time alone (every id 0).
struct Keys {
    source: Vec<u64>,
    entity: Vec<u64>,
    source_nulls: Vec<bool>,
    entity_nulls: Vec<bool>,
}

impl Keys {
    fn new(
        source: &[ArrayRef],
        entity: &[ArrayRef],
        n_source: usize,
        n_entity: usize,
    ) -> Result<Self> {
        let nulls = |cols: &[ArrayRef], n: usize| -> Vec<bool> {
            (0..n).map(|i| cols.iter().any(|c| c.is_null(i))).collect()
        };
        let source_nulls = nulls(source, n_source);
        let mut entity_nulls = nulls(entity, n_entity);
        if source.is_empty() {
            return Ok(Self {
                source: vec![0; n_source],
                entity: vec![0; n_entity],
                source_nulls,
                entity_nulls,
            });
        }
        let integer = source.len() == 1
            && matches!(
                ValueType::of_arrow(source[0].data_type()),
                Some(ValueType::Int32 | ValueType::Int64)
            );
        if integer {
            let ids = |col: &ArrayRef| -> Result<Vec<u64>> {
                let col = arrow::compute::cast(col, &DataType::Int64).map_err(arrow_err)?;
                Ok(col
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .iter()
                    .map(|v| *v as u64)
                    .collect())
            };
            return Ok(Self {
                source: ids(&source[0])?,
                entity: ids(&entity[0])?,
                source_nulls,
                entity_nulls,
            });
        }
        let converter = RowConverter::new(
            source
                .iter()
                .map(|c| SortField::new(c.data_type().clone()))
                .collect(),
        )
        .map_err(arrow_err)?;
        let source_rows = converter.convert_columns(source).map_err(arrow_err)?;
        let entity_rows = converter.convert_columns(entity).map_err(arrow_err)?;
        let mut distinct: HashMap<&[u8], u64> = HashMap::new();
        let source_ids: Vec<u64> = (0..n_source)
            .map(|i| {
                let next = distinct.len() as u64;
                *distinct.entry(source_rows.row(i).data()).or_insert(next)
            })
            .collect();
        let entity_ids: Vec<u64> = (0..n_entity)
            .map(|i| match distinct.get(entity_rows.row(i).data()) {
                Some(id) => *id,
                None => {
                    entity_nulls[i] = true;
                    u64::MAX
                }
            })
            .collect();
        Ok(Self {
            source: source_ids,
            entity: entity_ids,
            source_nulls,
            entity_nulls,
        })
    }

    fn source_null(&self, i: usize) -> bool {
        self.source_nulls.get(i).copied().unwrap_or(false)
    }

    fn entity_null(&self, i: usize) -> bool {
        self.entity_nulls.get(i).copied().unwrap_or(false)
    }

    /// The entity side's sort and group key: matchable rows first, by id.
    fn entity_key(&self, i: usize) -> (bool, u64) {
        (self.entity_null(i), self.entity[i])
    }
}

/// Timestamps as nanoseconds since the epoch (UTC; a timezone only changes how they display).
pub(crate) fn timestamps_ns(col: &ArrayRef, what: &str) -> Result<Vec<Option<i64>>> {
    let scale: i64 = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        other => {
            return Err(Error::invalid(
                "timestamp",
                format!("{what} is {other}, not a timestamp"),
            ));
        }
    };
    let values: Vec<Option<i64>> = match col.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => {
            col.as_primitive::<TimestampSecondType>().iter().collect()
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => col
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .collect(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => col
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        _ => col
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .collect(),
    };
    values
        .into_iter()
        .map(|v| match v {
            None => Ok(None),
            Some(v) => v.checked_mul(scale).map(Some).ok_or_else(|| {
                Error::invalid(
                    "timestamp",
                    format!("{what} holds {v}, outside the years 1677-2262"),
                )
            }),
        })
        .collect()
}

/// Casts a whole batch's columns into `schema` order and types (used to align entity batches).
pub(crate) fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    arrow::compute::concat_batches(schema, batches).map_err(arrow_err)
}

pub(crate) fn arrow_err(e: arrow::error::ArrowError) -> Error {
    Error::invalid("arrow", e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::time::Duration;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampSecondArray};

    use super::*;
    use crate::definitions::{DataSource, FeatureView};

    fn entity_rows(ids: &[i64], ts: &[i64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(ts.to_vec())) as ArrayRef,
            ),
            (
                "label",
                Arc::new(StringArray::from_iter_values(
                    ids.iter().map(|i| format!("l{i}")),
                )) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn view(ttl: Option<u64>, rows: RecordBatch) -> ViewTable {
        let mut v = FeatureView::new("stats", ["customer"], "src");
        if let Some(t) = ttl {
            v = v.with_ttl(Duration::from_secs(t));
        }
        ViewTable {
            request: ViewRequest {
                view: v,
                source: DataSource::parquet("src", "x.parquet", "ts")
                    .with_created_timestamp_column("created"),
                join_keys: vec!["customer_id".into()],
                features: vec!["spend".into()],
            },
            rows,
        }
    }

    fn source(ids: &[i64], ts: &[i64], created: &[i64], spend: &[f64]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(TimestampSecondArray::from(ts.to_vec())) as ArrayRef,
            ),
            (
                "created",
                Arc::new(TimestampSecondArray::from(created.to_vec())) as ArrayRef,
            ),
            (
                "spend",
                Arc::new(Float64Array::from(spend.to_vec())) as ArrayRef,
            ),
        ])
        .unwrap()
    }

    fn spend(batch: &RecordBatch) -> Vec<Option<f64>> {
        batch
            .column_by_name("spend")
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .iter()
            .collect()
    }

    #[test]
    fn latest_row_at_or_before_t_with_created_tie_break_and_ttl() {
        // Customer 1: rows at 10 (created 10), 20 (created 21, then a correction created 25), 40.
        let src = source(
            &[1, 1, 1, 1, 2],
            &[10, 20, 20, 40, 5],
            &[10, 25, 21, 40, 5],
            &[1.0, 2.5, 2.0, 4.0, 9.0],
        );
        let ents = entity_rows(&[1, 1, 1, 1, 2, 3, 2], &[9, 10, 39, 40, 100, 50, 4]);
        let out = point_in_time_join(
            &ents,
            &[view(None, src.clone())],
            HistoricalOptions::default(),
        )
        .unwrap();
        assert_eq!(
            spend(&out),
            [None, Some(1.0), Some(2.5), Some(4.0), Some(9.0), None, None]
        );
        assert_eq!(
            out.num_columns(),
            4,
            "entity columns pass through, then the feature"
        );
        // ttl 30 s: row 40 is valid until 70 (inclusive), row 5 until 35.
        let out = point_in_time_join(
            &entity_rows(&[1, 1, 1, 2, 2], &[39, 70, 71, 35, 36]),
            &[view(Some(30), src.clone())],
            HistoricalOptions::default(),
        )
        .unwrap();
        assert_eq!(spend(&out), [Some(2.5), Some(4.0), None, Some(9.0), None]);
        let ents = entity_rows(&[1, 1], &[22, 30]);
        let out = point_in_time_join(
            &ents,
            &[view(None, src)],
            HistoricalOptions::default().with_filter_by_created_timestamp(true),
        )
        .unwrap();
        assert_eq!(
            spend(&out),
            [Some(2.0), Some(2.5)],
            "only rows created by T"
        );
    }

    #[test]
    fn several_join_keys_and_views_without_entities() {
        let src = RecordBatch::try_from_iter([
            (
                "store",
                Arc::new(Int64Array::from(vec![1, 1, 2])) as ArrayRef,
            ),
            (
                "sku",
                Arc::new(StringArray::from(vec!["a", "b", "a"])) as ArrayRef,
            ),
            (
                "ts",
                Arc::new(TimestampSecondArray::from(vec![1, 2, 3])) as ArrayRef,
            ),
            (
                "spend",
                Arc::new(Float64Array::from(vec![10.0, 20.0, 30.0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let ents = RecordBatch::try_from_iter([
            (
                "store",
                Arc::new(Int64Array::from(vec![1, 2, 1, 2])) as ArrayRef,
            ),
            (
                "sku",
                Arc::new(StringArray::from(vec!["b", "a", "a", "b"])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![9, 9, 9, 9])) as ArrayRef,
            ),
        ])
        .unwrap();
        let mut v = view(None, src.clone());
        v.request.join_keys = vec!["store".into(), "sku".into()];
        v.request.source = DataSource::parquet("src", "x.parquet", "ts");
        let out = point_in_time_join(&ents, &[v.clone()], HistoricalOptions::default()).unwrap();
        assert_eq!(spend(&out), [Some(20.0), Some(30.0), Some(10.0), None]);
        // No join keys: the latest row at or before T, whoever it belongs to.
        v.request.join_keys.clear();
        let ents = RecordBatch::try_from_iter([(
            "event_timestamp",
            Arc::new(TimestampSecondArray::from(vec![0, 2, 5])) as ArrayRef,
        )])
        .unwrap();
        let out = point_in_time_join(&ents, &[v], HistoricalOptions::default()).unwrap();
        assert_eq!(spend(&out), [None, Some(20.0), Some(30.0)]);
    }

    #[test]
    fn collisions_and_type_mismatches_are_named() {
        let src = source(&[1], &[1], &[1], &[1.0]);
        let mut v2 = view(None, src.clone());
        v2.request.view.name = "other".into();
        let err = point_in_time_join(
            &entity_rows(&[1], &[5]),
            &[view(None, src.clone()), v2.clone()],
            HistoricalOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("collides"), "{err}");
        let out = point_in_time_join(
            &entity_rows(&[1], &[5]),
            &[view(None, src.clone()), v2],
            HistoricalOptions::default().with_full_feature_names(true),
        )
        .unwrap();
        assert!(out.column_by_name("other__spend").is_some());
        let ents = RecordBatch::try_from_iter([
            (
                "customer_id",
                Arc::new(StringArray::from(vec!["1"])) as ArrayRef,
            ),
            (
                "event_timestamp",
                Arc::new(TimestampSecondArray::from(vec![5])) as ArrayRef,
            ),
        ])
        .unwrap();
        let err = point_in_time_join(&ents, &[view(None, src)], HistoricalOptions::default())
            .unwrap_err();
        assert!(err.is_invalid_argument());
        assert!(
            err.to_string().contains("join key customer_id is Utf8"),
            "{err}"
        );
        let no_ts = RecordBatch::try_from_iter([(
            "customer_id",
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )])
        .unwrap();
        let err = entity_timestamp_column(&no_ts.schema()).unwrap_err();
        assert!(
            err.to_string().contains("no event_timestamp column"),
            "{err}"
        );
    }
}
