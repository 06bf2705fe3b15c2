//! Reading a source for a training set in bounded memory.
//!
//! A source streams in batch by batch and only the rows that can be some entity row's answer
//! are kept: for each join key, the entity rows' distinct times `T1 < T2 < …` cut time into
//! buckets, a source row belongs to the first bucket whose time is not before it (its event
//! time, or with `filter_by_created_timestamp` the later of its event and created times: the
//! first entity time it is eligible for), and per (key, bucket) only the latest row (by event
//! time, created time, then source order) survives. The latest eligible row for `Tj` is the
//! latest of the survivors of buckets `1..=j`, so the point-in-time join over the survivors
//! answers exactly as over the whole source — and memory is at most one row per entity row
//! (plus one batch), however long the source's history.

use std::collections::HashMap;

use arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use mlops_core::{Error, Result};

use crate::definitions::ViewRequest;
use crate::historical::{HistoricalOptions, arrow_err, entity_key, timestamps_ns};
use crate::online::push_key_arrow;

/// Where a surviving row is: in a kept part, or in the batch being read.
#[derive(Debug, Clone, Copy)]
enum Loc {
    Part(usize, usize),
    Pending(usize),
}

#[derive(Debug, Clone, Copy)]
struct Best {
    order: (i64, i64, u64),
    loc: Loc,
}

/// One join key's entity times and the survivor slot of each bucket.
#[derive(Debug, Default)]
struct KeyTimes {
    times: Vec<i64>,
    slots: Vec<Option<usize>>,
}

/// Keeps the rows of one view's source that can answer some entity row (see the module docs).
#[derive(Debug)]
pub(crate) struct Reducer {
    schema: SchemaRef,
    view: String,
    source: String,
    timestamp_field: String,
    created_field: Option<String>,
    join_keys: Vec<String>,
    filter_created: bool,
    keys: HashMap<Vec<u8>, KeyTimes>,
    best: Vec<Best>,
    parts: Vec<RecordBatch>,
    part_rows: usize,
    seq: u64,
}

/// Compact the kept parts once they hold this many more rows than survive.
const SLACK_ROWS: usize = 64 * 1024;

impl Reducer {
    /// A reducer for `request`'s source, whose stream has `schema`, against the entity rows.
    pub(crate) fn new(
        request: &ViewRequest,
        schema: SchemaRef,
        entity: &RecordBatch,
        entity_ts: &[Option<i64>],
        options: HistoricalOptions,
    ) -> Result<Self> {
        let view = request.view.name.clone();
        let mut entity_keys = Vec::with_capacity(request.join_keys.len());
        for k in &request.join_keys {
            let field = schema.field_with_name(k).map_err(|_| {
                Error::invalid(
                    "source",
                    format!(
                        "source {} of view {view} has no join key column {k}",
                        request.source.name
                    ),
                )
            })?;
            entity_keys.push(entity_key(entity, k, field.data_type(), &view)?);
        }
        let mut keys: HashMap<Vec<u8>, KeyTimes> = HashMap::new();
        let mut buf = Vec::new();
        for (i, t) in entity_ts.iter().enumerate() {
            let Some(t) = t else { continue };
            buf.clear();
            if !push_key_arrow(&entity_keys, i, &mut buf)? {
                continue;
            }
            match keys.get_mut(buf.as_slice()) {
                Some(k) => k.times.push(*t),
                None => {
                    keys.insert(
                        buf.clone(),
                        KeyTimes {
                            times: vec![*t],
                            slots: Vec::new(),
                        },
                    );
                }
            }
        }
        for k in keys.values_mut() {
            k.times.sort_unstable();
            k.times.dedup();
            k.slots = vec![None; k.times.len()];
        }
        Ok(Self {
            schema,
            view,
            source: request.source.name.clone(),
            timestamp_field: request.source.timestamp_field.clone(),
            created_field: request.source.created_timestamp_column.clone(),
            join_keys: request.join_keys.clone(),
            filter_created: options.filter_by_created_timestamp,
            keys,
            best: Vec::new(),
            parts: Vec::new(),
            part_rows: 0,
            seq: 0,
        })
    }

    fn column(&self, batch: &RecordBatch, name: &str, what: &str) -> Result<ArrayRef> {
        batch.column_by_name(name).cloned().ok_or_else(|| {
            Error::invalid(
                "source",
                format!(
                    "source {} of view {} has no {what} column {name}",
                    self.source, self.view
                ),
            )
        })
    }

    /// Reads one batch of the source.
    pub(crate) fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        let event = timestamps_ns(
            &self.column(batch, &self.timestamp_field, "timestamp_field")?,
            &format!("{}.{}", self.source, self.timestamp_field),
        )?;
        let created = match &self.created_field {
            Some(c) => Some(timestamps_ns(
                &self.column(batch, c, "created_timestamp_column")?,
                &format!("{}.{c}", self.source),
            )?),
            None => None,
        };
        let key_cols: Vec<ArrayRef> = self
            .join_keys
            .iter()
            .map(|k| self.column(batch, k, "join key"))
            .collect::<Result<_>>()?;
        let mut touched: Vec<usize> = Vec::new();
        let mut buf = Vec::new();
        for i in 0..n {
            let Some(ev) = event[i] else { continue };
            buf.clear();
            if !push_key_arrow(&key_cols, i, &mut buf)? {
                continue;
            }
            let Some(k) = self.keys.get_mut(buf.as_slice()) else {
                continue;
            };
            let cr = created.as_ref().and_then(|c| c[i]).unwrap_or(i64::MIN);
            let eligible_from = if self.filter_created && created.is_some() {
                ev.max(cr)
            } else {
                ev
            };
            let bucket = k.times.partition_point(|&t| t < eligible_from);
            if bucket == k.times.len() {
                continue; // later than every entity row of the key
            }
            let order = (ev, cr, self.seq + i as u64);
            match k.slots[bucket] {
                Some(s) if self.best[s].order >= order => {}
                Some(s) => {
                    self.best[s] = Best {
                        order,
                        loc: Loc::Pending(i),
                    };
                    touched.push(s);
                }
                None => {
                    k.slots[bucket] = Some(self.best.len());
                    touched.push(self.best.len());
                    self.best.push(Best {
                        order,
                        loc: Loc::Pending(i),
                    });
                }
            }
        }
        self.seq += n as u64;
        // Keep this batch's survivors, in source order.
        touched.sort_unstable();
        touched.dedup();
        let mut rows: Vec<(usize, usize)> = touched
            .into_iter()
            .filter_map(|s| match self.best[s].loc {
                Loc::Pending(r) => Some((r, s)),
                Loc::Part(..) => None,
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        rows.sort_unstable();
        let indices = UInt32Array::from_iter_values(
            rows.iter()
                .map(|(r, _)| u32::try_from(*r).unwrap_or(u32::MAX)),
        );
        let kept = arrow::compute::take_record_batch(batch, &indices).map_err(arrow_err)?;
        let part = self.parts.len();
        for (j, (_, s)) in rows.iter().enumerate() {
            self.best[*s].loc = Loc::Part(part, j);
        }
        self.part_rows += kept.num_rows();
        self.parts.push(kept);
        if self.part_rows > 2 * self.best.len() + SLACK_ROWS {
            let all = self.survivors()?;
            self.part_rows = all.num_rows();
            self.parts = vec![all];
        }
        Ok(())
    }

    /// The surviving rows in source order, in one batch; re-points them there.
    fn survivors(&mut self) -> Result<RecordBatch> {
        let mut live: Vec<(u64, usize)> = self
            .best
            .iter()
            .enumerate()
            .map(|(s, b)| (b.order.2, s))
            .collect();
        live.sort_unstable();
        let mut picks: Vec<(usize, usize)> = Vec::with_capacity(live.len());
        for (_, s) in &live {
            match self.best[*s].loc {
                Loc::Part(p, r) => picks.push((p, r)),
                Loc::Pending(_) => {
                    return Err(Error::invalid("source", "a survivor was not kept"));
                }
            }
        }
        let batch = if picks.is_empty() {
            RecordBatch::new_empty(self.schema.clone())
        } else {
            let columns = (0..self.schema.fields().len())
                .map(|c| {
                    let arrays: Vec<&dyn Array> =
                        self.parts.iter().map(|p| p.column(c).as_ref()).collect();
                    arrow::compute::interleave(&arrays, &picks).map_err(arrow_err)
                })
                .collect::<Result<Vec<_>>>()?;
            RecordBatch::try_new(self.schema.clone(), columns).map_err(arrow_err)?
        };
        for (j, (_, s)) in live.iter().enumerate() {
            self.best[*s].loc = Loc::Part(0, j);
        }
        Ok(batch)
    }

    /// The rows that can answer an entity row, in source order.
    pub(crate) fn finish(mut self) -> Result<RecordBatch> {
        if self.parts.is_empty() {
            return Ok(RecordBatch::new_empty(self.schema.clone()));
        }
        self.survivors()
    }
}
