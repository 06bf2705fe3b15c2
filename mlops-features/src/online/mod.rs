//! Online features: materialization into an [`OnlineStore`] and lookups by entity key.
//!
//! **Materialization** (`materialize(start, end)`, `materialize_incremental(end)`) writes, per
//! online feature view, the latest row per entity key among the source rows with `start <=
//! event_ts <= end` (both inclusive, as Feast's `BETWEEN`), ties broken by the created time.
//! No ttl filter applies (Feast applies none either); the ttl is judged at read time. The
//! window is reduced to one row per key first (memory: the projected source and one index per
//! distinct key), then written in key order in chunks of [`MaterializeOptions::chunk_rows`]
//! keys: each chunk is one atomic store write carrying the last key it wrote, so a killed run
//! resumes after it, and since the store keeps the newer row per key (by event, then created
//! time) re-writing a chunk changes nothing — no duplicates, never a half-written entity.
//! `materialize_incremental` starts each view at its last materialized end, else `now - ttl`,
//! else `now - 52 weeks` (Feast's rule).
//!
//! **Layout.** A view's rows live in the table `<project>/<view>/<fingerprint>`, the
//! fingerprint of its join keys and features (names and types), recorded at materialization in
//! the mark `layout/<project>/<view>`; a changed schema writes a new table, so old rows are
//! never decoded with new types.
//!
//! **Lookups** ([`OnlineFeatures::get_online_features`]) answer Feast's column-oriented
//! response: join keys first, then the features view by view in request order, each with
//! values, statuses and event times. Statuses follow Feast's serving proto: `PRESENT`;
//! `NULL_VALUE` for a stored null; `NOT_FOUND` when the key has no row (or a null join key);
//! `OUTSIDE_MAX_AGE` when the row is older than the view's ttl (`now - event_ts > ttl`, Feast's
//! strict comparison), whose value is then null — a stale value is never served as if fresh.
//! (Feast 0.67's Python server answers `PRESENT` for stored nulls and checks ttls only on its
//! precomputed feature-service path; see ARCHITECTURE.md.)

#[cfg(feature = "redis")]
mod redis_store;
mod stores;
mod value;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::datatypes::DataType;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use mlops_core::online::{OnlineRow, OnlineStore};
use mlops_core::store::RefVersion;
use mlops_core::{Digest, Error, Result};
use serde::{Deserialize, Serialize};

#[cfg(feature = "redis")]
pub use redis_store::RedisOnlineStore;
pub use stores::{EmbeddedOnlineStore, MemoryOnlineStore};
pub use value::{FeatureValue, decode_values, encode_key, push_key, push_key_arrow, push_value};

use crate::definitions::{FeatureSelection, FeatureView, ValueType, known};
use crate::historical::{cast_feature, output_name, timestamps_ns};
use crate::registry::AppliedRepo;
use crate::{FeatureStore, SourceLineage};

/// Where a view's rows live in the online store, and their columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Layout {
    /// The table.
    pub table: String,
    /// The join keys, in key order, with the source's types.
    pub join_keys: Vec<(String, ValueType)>,
    /// The features, in row order.
    pub features: Vec<(String, ValueType)>,
}

impl Layout {
    fn new(
        project: &str,
        view: &str,
        join_keys: Vec<(String, ValueType)>,
        features: Vec<(String, ValueType)>,
    ) -> Self {
        let doc = serde_json::json!([join_keys, features]).to_string();
        let fp = Digest::of(doc.as_bytes()).to_hex();
        Self {
            table: format!("{project}/{view}/{}", &fp[..16]),
            join_keys,
            features,
        }
    }
}

fn layout_mark(project: &str, view: &str) -> String {
    format!("layout/{project}/{view}")
}

fn progress_mark(table: &str) -> String {
    format!("progress/{table}")
}

fn materialized_mark(project: &str, view: &str) -> String {
    format!("materialized/{project}/{view}")
}

/// A chunked run's position, kept with each chunk: every key up to `after_key` (hex; keys are
/// written in byte order) is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Progress {
    start_ns: i64,
    end_ns: i64,
    after_key: Option<String>,
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a view's last completed materialization covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Materialized {
    start_ns: i64,
    most_recent_end_ns: i64,
}

/// Options of a materialization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaterializeOptions {
    /// Only these views (all online views when `None`).
    pub views: Option<Vec<String>>,
    /// Source rows per atomic write (and per watermark).
    pub chunk_rows: usize,
}

impl Default for MaterializeOptions {
    fn default() -> Self {
        Self {
            views: None,
            chunk_rows: 50_000,
        }
    }
}

impl MaterializeOptions {
    /// Only these views.
    pub fn with_views<S: Into<String>>(mut self, views: impl IntoIterator<Item = S>) -> Self {
        self.views = Some(views.into_iter().map(Into::into).collect());
        self
    }

    /// Rows per chunk (at least 1).
    pub fn with_chunk_rows(mut self, rows: usize) -> Self {
        self.chunk_rows = rows.max(1);
        self
    }
}

/// One view's materialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ViewMaterialization {
    /// The view.
    pub view: String,
    /// The window, ns (inclusive).
    pub start_ns: i64,
    /// End of the window, ns (inclusive).
    pub end_ns: i64,
    /// Source rows inside the window.
    pub rows_in_window: usize,
    /// Entity rows written to the store.
    pub written: usize,
    /// Rows the store kept a newer row for.
    pub skipped_older: usize,
    /// Atomic writes made.
    pub chunks: usize,
    /// When an interrupted run of the same window was resumed: how many entity keys it had
    /// already written.
    pub resumed_after: Option<usize>,
    /// The source as read.
    pub source: SourceLineage,
}

/// A materialization's views.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MaterializeReport {
    /// The project.
    pub project: String,
    /// The registry version whose definitions were materialized.
    pub registry_version: mlops_core::Version,
    /// Per view.
    pub views: Vec<ViewMaterialization>,
}

/// Nanoseconds since the epoch now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn ttl_ns(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|t| i64::try_from(t.as_nanos()).unwrap_or(i64::MAX))
}

impl FeatureStore {
    /// Writes the latest row per entity key with `start_ns <= event_ts <= end_ns` of every
    /// online view (or those of `options`) into `online`; see the [module docs](self).
    pub async fn materialize(
        &self,
        project: &str,
        online: &dyn OnlineStore,
        start_ns: i64,
        end_ns: i64,
        options: &MaterializeOptions,
    ) -> Result<MaterializeReport> {
        if start_ns > end_ns {
            return Err(Error::invalid(
                "materialize",
                format!("the window starts ({start_ns} ns) after it ends ({end_ns} ns)"),
            ));
        }
        self.materialize_window(project, online, Some(start_ns), end_ns, options)
            .await
    }

    /// Materializes each view from where its last materialization ended (else `now - ttl`,
    /// else `now - 52 weeks`) to `end_ns`.
    pub async fn materialize_incremental(
        &self,
        project: &str,
        online: &dyn OnlineStore,
        end_ns: i64,
        options: &MaterializeOptions,
    ) -> Result<MaterializeReport> {
        self.materialize_window(project, online, None, end_ns, options)
            .await
    }

    /// Every selected view from `start_ns` (or, when `None`, its incremental start) to `end_ns`.
    async fn materialize_window(
        &self,
        project: &str,
        online: &dyn OnlineStore,
        start_ns: Option<i64>,
        end_ns: i64,
        options: &MaterializeOptions,
    ) -> Result<MaterializeReport> {
        let applied = self.registry().get(project, RefVersion::Latest).await?;
        let now = now_ns();
        let mut views = Vec::new();
        for view in selected_views(&applied, options)? {
            let start = match start_ns {
                Some(s) => s,
                None => incremental_start(online, project, view, now).await?,
            };
            if start > end_ns {
                return Err(Error::invalid(
                    "materialize",
                    format!(
                        "view {} is materialized up to {start} ns, after the requested end {end_ns} ns",
                        view.name
                    ),
                ));
            }
            views.push(
                self.materialize_view(&applied, online, view, start, end_ns, options)
                    .await?,
            );
        }
        Ok(MaterializeReport {
            project: project.to_owned(),
            registry_version: applied.version,
            views,
        })
    }

    async fn materialize_view(
        &self,
        applied: &AppliedRepo,
        online: &dyn OnlineStore,
        view: &FeatureView,
        start_ns: i64,
        end_ns: i64,
        options: &MaterializeOptions,
    ) -> Result<ViewMaterialization> {
        let repo = &applied.repo;
        let project = repo.project.as_str();
        let source = repo.source(&view.source).ok_or_else(|| {
            Error::invalid(
                "feature view",
                format!("view {} reads an undefined source", view.name),
            )
        })?;
        let join_keys = repo.join_keys(view);
        let mut columns = join_keys.clone();
        columns.push(source.timestamp_field.clone());
        columns.extend(source.created_timestamp_column.iter().cloned());
        // The source streams in batch by batch: memory is one batch plus the latest row of
        // each entity key, however long the source's history.
        let mut stream = if view.schema.is_empty() {
            self.reader().read_stream(source, None).await?
        } else {
            let mut wanted = columns.clone();
            wanted.extend(view.schema.iter().map(|f| f.name.clone()));
            self.reader().read_stream(source, Some(&wanted)).await?
        };
        let schema = stream.schema.clone();
        let field_type = |name: &str| -> Result<&DataType> {
            schema
                .field_with_name(name)
                .map(|f| f.data_type())
                .map_err(|_| {
                    Error::invalid(
                        "source",
                        format!("source {} has no column {name}", source.name),
                    )
                })
        };
        // The features and their types: declared, or every other column of the source.
        let mut features: Vec<(String, ValueType)> = Vec::new();
        if view.schema.is_empty() {
            for f in schema.fields() {
                if columns.contains(f.name()) {
                    continue;
                }
                let dtype = ValueType::of_arrow(f.data_type()).ok_or_else(|| {
                    Error::not_supported(
                        "feature type",
                        format!("{}:{}", view.name, f.name()),
                        format!(
                            "{} columns cannot be online features; declare the view's schema",
                            f.data_type()
                        ),
                    )
                })?;
                features.push((f.name().clone(), dtype));
            }
        } else {
            for f in &view.schema {
                field_type(&f.name)?;
                features.push((f.name.clone(), f.dtype));
            }
        }
        let mut typed_keys = Vec::with_capacity(join_keys.len());
        for k in &join_keys {
            let dt = field_type(k)?;
            let dtype = ValueType::of_arrow(dt).ok_or_else(|| {
                Error::invalid(
                    "join key",
                    format!(
                        "join key {k} of source {} is {dt}, not an integer, string, boolean or bytes",
                        source.name
                    ),
                )
            })?;
            typed_keys.push((k.clone(), dtype));
        }
        let layout = Layout::new(project, &view.name, typed_keys, features.clone());

        // The latest row per key in the window (ties: later created, then later source row).
        let mut latest: HashMap<Vec<u8>, Latest> = HashMap::new();
        let mut rows_in_window = 0usize;
        let mut seq = 0usize;
        let mut key = Vec::new();
        while let Some(rows) = stream.batches.next().await {
            let rows = rows?;
            let event = timestamps_ns(
                &column(&rows, &source.timestamp_field, &source.name)?,
                &source.timestamp_field,
            )?;
            let created = match &source.created_timestamp_column {
                Some(c) => Some(timestamps_ns(&column(&rows, c, &source.name)?, c)?),
                None => None,
            };
            let cr = |i: usize| created.as_ref().and_then(|c| c[i]).unwrap_or(i64::MIN);
            let key_cols: Vec<ArrayRef> = join_keys
                .iter()
                .map(|k| column(&rows, k, &source.name))
                .collect::<Result<_>>()?;
            // This batch's latest row per key, then each against the latest so far.
            let mut in_batch: HashMap<Vec<u8>, usize> = HashMap::new();
            for i in 0..rows.num_rows() {
                let Some(t) = event[i].filter(|t| *t >= start_ns && *t <= end_ns) else {
                    continue;
                };
                rows_in_window += 1;
                key.clear();
                if !push_key_arrow(&key_cols, i, &mut key)? {
                    continue;
                }
                match in_batch.get_mut(key.as_slice()) {
                    Some(j) => {
                        if (t, cr(i), i) > (event[*j].unwrap_or(i64::MIN), cr(*j), *j) {
                            *j = i;
                        }
                    }
                    None => {
                        in_batch.insert(key.clone(), i);
                    }
                }
            }
            if in_batch.is_empty() {
                seq += rows.num_rows();
                continue;
            }
            let feature_cols: Vec<ArrayRef> = features
                .iter()
                .map(|(name, dtype)| {
                    cast_feature(
                        &column(&rows, name, &source.name)?,
                        *dtype,
                        &view.name,
                        name,
                    )
                })
                .collect::<Result<_>>()?;
            for (k, i) in in_batch {
                let candidate = (event[i].unwrap_or(i64::MIN), cr(i), seq + i);
                if latest
                    .get(&k)
                    .is_some_and(|l| (l.event, l.created, l.seq) >= candidate)
                {
                    continue;
                }
                let mut buf = BytesMut::with_capacity(9 * feature_cols.len());
                for col in &feature_cols {
                    push_value(&mut buf, &FeatureValue::from_arrow(col, i)?)?;
                }
                latest.insert(
                    k,
                    Latest {
                        event: candidate.0,
                        created: candidate.1,
                        seq: candidate.2,
                        values: buf.freeze(),
                    },
                );
            }
            seq += rows.num_rows();
        }
        // Written in key order, each chunk with the last key it wrote: a killed run of the
        // same window resumes after it.
        let mut ordered: Vec<(Vec<u8>, Latest)> = latest.into_iter().collect();
        ordered.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let progress_name = progress_mark(&layout.table);
        let resume_after: Option<Vec<u8>> = match online.mark(&progress_name).await? {
            Some(p) => serde_json::from_slice::<Progress>(&p)
                .ok()
                .filter(|p| p.start_ns == start_ns && p.end_ns == end_ns)
                .and_then(|p| p.after_key)
                .and_then(|hex| from_hex(&hex)),
            None => None,
        };
        let resumed_after = match &resume_after {
            Some(after) => {
                let before = ordered.len();
                ordered.retain(|(k, _)| k > after);
                Some(before - ordered.len())
            }
            None => None,
        };

        let layout_json = Bytes::from(
            serde_json::to_vec(&layout).map_err(|e| Error::invalid("layout", e.to_string()))?,
        );
        let mut report = ViewMaterialization {
            view: view.name.clone(),
            start_ns,
            end_ns,
            rows_in_window,
            written: 0,
            skipped_older: 0,
            chunks: 0,
            resumed_after,
            source: stream.lineage.clone(),
        };
        let mut first = true;
        for chunk in ordered.chunks(options.chunk_rows) {
            let out: Vec<OnlineRow> = chunk
                .iter()
                .map(|(key, l)| {
                    OnlineRow::new(
                        Bytes::copy_from_slice(key),
                        l.event,
                        l.created,
                        l.values.clone(),
                    )
                })
                .collect();
            let after_key = chunk.last().map(|(k, _)| to_hex(k));
            let mut marks = vec![(
                progress_name.clone(),
                Bytes::from(
                    serde_json::to_vec(&Progress {
                        start_ns,
                        end_ns,
                        after_key,
                    })
                    .unwrap_or_default(),
                ),
            )];
            if first {
                marks.push((layout_mark(project, &view.name), layout_json.clone()));
                first = false;
            }
            let s = online.write(&layout.table, &out, &marks).await?;
            report.written += s.written;
            report.skipped_older += s.skipped_older;
            report.chunks += 1;
        }
        // Done: the layout (also when no row was in the window), the end for incremental runs,
        // and a progress mark past the window so a re-run of it starts afresh.
        let done = Materialized {
            start_ns,
            most_recent_end_ns: end_ns,
        };
        let marks = vec![
            (layout_mark(project, &view.name), layout_json),
            (
                materialized_mark(project, &view.name),
                Bytes::from(serde_json::to_vec(&done).unwrap_or_default()),
            ),
            (
                progress_name,
                Bytes::from(
                    serde_json::to_vec(&Progress {
                        start_ns: i64::MIN,
                        end_ns: i64::MIN,
                        after_key: None,
                    })
                    .unwrap_or_default(),
                ),
            ),
        ];
        online.write(&layout.table, &[], &marks).await?;
        Ok(report)
    }
}

/// A key's latest row so far during materialization: its order (event, created, source row)
/// and its encoded values.
struct Latest {
    event: i64,
    created: i64,
    seq: usize,
    values: Bytes,
}

/// Where an incremental run of `view` starts: its last materialized end, else `now - ttl`,
/// else `now - 52 weeks` (Feast's rule).
async fn incremental_start(
    online: &dyn OnlineStore,
    project: &str,
    view: &FeatureView,
    now: i64,
) -> Result<i64> {
    Ok(
        match online.mark(&materialized_mark(project, &view.name)).await? {
            Some(m) => {
                let m: Materialized = serde_json::from_slice(&m).map_err(|e| {
                    Error::corrupt("materialization mark", &view.name, e.to_string())
                })?;
                m.most_recent_end_ns
            }
            None => match ttl_ns(view.ttl) {
                Some(ttl) => now.saturating_sub(ttl),
                None => now.saturating_sub(52 * 7 * 86_400 * 1_000_000_000),
            },
        },
    )
}

fn column(rows: &RecordBatch, name: &str, source: &str) -> Result<ArrayRef> {
    rows.column_by_name(name)
        .cloned()
        .ok_or_else(|| Error::invalid("source", format!("source {source} has no column {name}")))
}

fn selected_views<'a>(
    applied: &'a AppliedRepo,
    options: &MaterializeOptions,
) -> Result<Vec<&'a FeatureView>> {
    let repo = &applied.repo;
    match &options.views {
        None => Ok(repo.feature_views.iter().filter(|v| v.online).collect()),
        Some(names) => names
            .iter()
            .map(|n| {
                let v = repo.feature_view(n).ok_or_else(|| {
                    Error::invalid(
                        "feature view",
                        format!(
                            "project {} has no feature view {n}{}",
                            repo.project,
                            known(repo.feature_views.iter().map(|v| &v.name))
                        ),
                    )
                })?;
                if !v.online {
                    return Err(Error::invalid(
                        "feature view",
                        format!("feature view {n} is not online (online: false)"),
                    ));
                }
                Ok(v)
            })
            .collect(),
    }
}

/// A feature's status in an online response (Feast's `FieldStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum FeatureStatus {
    /// A value was found.
    Present,
    /// A row was found whose value is null.
    NullValue,
    /// No row for the key.
    NotFound,
    /// The row is older than the view's ttl; the value is withheld (null).
    OutsideMaxAge,
}

/// One column of an online response: a join key or a feature across the entity rows.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FeatureVector {
    /// A value per entity row.
    pub values: Vec<FeatureValue>,
    /// A status per entity row.
    pub statuses: Vec<FeatureStatus>,
    /// The row's event time per entity row, ns (0 for join keys and rows not found).
    pub event_timestamps_ns: Vec<i64>,
}

/// An online response, column-oriented as Feast's.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct OnlineResponse {
    /// Join keys, then features (named `feature` or `view__feature`).
    pub feature_names: Vec<String>,
    /// One vector per name.
    pub results: Vec<FeatureVector>,
}

impl OnlineResponse {
    /// `{name: [value per entity row]}`, as Feast's `OnlineResponse.to_dict()`.
    pub fn to_dict(&self) -> serde_json::Map<String, serde_json::Value> {
        self.feature_names
            .iter()
            .zip(&self.results)
            .map(|(n, r)| {
                (
                    n.clone(),
                    r.values.iter().map(FeatureValue::to_json).collect(),
                )
            })
            .collect()
    }

    /// Feast's HTTP response: `{"results": [{"values", "statuses", "event_timestamps"}],
    /// "metadata": {"feature_names"}}`, `results[i]` being `feature_names[i]` across the entity
    /// rows, event times as RFC 3339 UTC (`1970-01-01T00:00:00Z` for join keys and rows not
    /// found).
    pub fn to_feast_json(&self) -> serde_json::Value {
        let results: Vec<serde_json::Value> = self
            .results
            .iter()
            .map(|r| {
                serde_json::json!({
                    "values": r.values.iter().map(FeatureValue::to_json).collect::<Vec<_>>(),
                    "statuses": r.statuses,
                    "event_timestamps": r.event_timestamps_ns.iter().map(|&t| rfc3339(t)).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({"results": results, "metadata": {"feature_names": self.feature_names}})
    }

    /// A column by name.
    pub fn get(&self, name: &str) -> Option<&FeatureVector> {
        self.feature_names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.results[i])
    }
}

/// A view as the online path needs it.
#[derive(Debug)]
struct OnlineView {
    layout: Layout,
    ttl_ns: Option<i64>,
    positions: HashMap<String, usize>,
}

#[derive(Debug)]
struct Resolved {
    applied: AppliedRepo,
    views: HashMap<String, OnlineView>,
    /// Selections planned against these definitions, so a lookup resolves nothing again.
    plans: Mutex<HashMap<(FeatureSelection, bool), Arc<LookupPlan>>>,
}

/// At most this many selections keep a plan per registry version (HTTP clients may send any
/// list of references); past it the cache starts over.
const MAX_PLANS: usize = 1024;

/// What a selection reads: per view, the positions of its features in the stored rows and
/// their result names.
#[derive(Debug)]
struct LookupPlan {
    views: Vec<PlannedView>,
    /// Join keys and their types, for echoing entity columns in their key's type.
    key_types: Vec<(String, ValueType)>,
    /// On-demand features, computed after the lookups.
    on_demand: Vec<crate::ondemand::OnDemandRequest>,
    /// Result names of features fetched only as on-demand inputs.
    hidden: Vec<String>,
    /// Request fields the on-demand features read, with their types.
    request_fields: Vec<(String, ValueType)>,
}

#[derive(Debug)]
struct PlannedView {
    view: String,
    positions: Vec<usize>,
    names: Vec<String>,
}

impl Resolved {
    /// The selection's plan, from the cache when it was planned before.
    fn plan(&self, selection: &FeatureSelection, full: bool) -> Result<Arc<LookupPlan>> {
        let poisoned = || Error::unavailable("poisoned lock");
        let key = (selection.clone(), full);
        if let Some(p) = self.plans.lock().map_err(|_| poisoned())?.get(&key) {
            return Ok(p.clone());
        }
        let plan = Arc::new(self.plan_uncached(selection, full)?);
        let mut plans = self.plans.lock().map_err(|_| poisoned())?;
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(key, plan.clone());
        Ok(plan)
    }

    fn plan_uncached(&self, selection: &FeatureSelection, full: bool) -> Result<LookupPlan> {
        let resolution = self.applied.repo.resolve_all(selection)?;
        let requests = &resolution.views;
        let mut views = Vec::with_capacity(requests.len());
        let mut key_types: Vec<(String, ValueType)> = Vec::new();
        let mut all_names: Vec<&str> = Vec::new();
        for req in requests {
            let view = self.views.get(&req.view.name).ok_or_else(|| {
                Error::invalid(
                    "feature view",
                    format!(
                        "feature view {} has not been materialized (mlops features materialize)",
                        req.view.name
                    ),
                )
            })?;
            let wanted: Vec<&String> = if req.features.is_empty() {
                view.layout.features.iter().map(|(f, _)| f).collect()
            } else {
                req.features.iter().collect()
            };
            let positions = wanted
                .iter()
                .map(|f| {
                    view.positions.get(*f).copied().ok_or_else(|| {
                        Error::invalid(
                            "feature reference",
                            format!("feature view {} has no feature {f}", req.view.name),
                        )
                    })
                })
                .collect::<Result<_>>()?;
            for (k, t) in &view.layout.join_keys {
                if !key_types.iter().any(|(n, _)| n == k) {
                    key_types.push((k.clone(), *t));
                }
            }
            let names: Vec<String> = wanted
                .iter()
                .map(|f| output_name(&req.view.name, f, full))
                .collect();
            views.push(PlannedView {
                view: req.view.name.clone(),
                positions,
                names,
            });
        }
        let od_names: Vec<String> = resolution
            .on_demand
            .iter()
            .flat_map(|o| {
                o.features
                    .iter()
                    .map(|f| output_name(&o.view.name, f, full))
            })
            .collect();
        for name in views.iter().flat_map(|v| &v.names).chain(&od_names) {
            if all_names.contains(&name.as_str()) {
                return Err(collision(name));
            }
            all_names.push(name);
        }
        let hidden = resolution
            .hidden
            .iter()
            .map(|(v, f)| output_name(v, f, full))
            .collect();
        let mut request_fields: Vec<(String, ValueType)> = Vec::new();
        for o in &resolution.on_demand {
            for f in &o.view.request_schema {
                if !request_fields.iter().any(|(n, _)| *n == f.name) {
                    request_fields.push((f.name.clone(), f.dtype));
                }
            }
        }
        Ok(LookupPlan {
            views,
            key_types,
            on_demand: resolution.on_demand,
            hidden,
            request_fields,
        })
    }
}

fn collision(name: &str) -> Error {
    Error::invalid(
        "features",
        format!("result column {name} collides with another column; request full feature names"),
    )
}

/// The background refresh of [`OnlineFeatures::spawn_refresh`]: stops when dropped.
#[derive(Debug)]
#[must_use = "the refresh stops when this is dropped"]
pub struct RefreshTask(tokio::task::JoinHandle<()>);

impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Online lookups of one project, over the definitions and layouts of a registry version
/// (re-read by [`refresh`](Self::refresh)).
#[derive(Debug, Clone)]
pub struct OnlineFeatures {
    features: FeatureStore,
    online: Arc<dyn OnlineStore>,
    project: String,
    resolved: Arc<RwLock<Arc<Resolved>>>,
}

impl OnlineFeatures {
    /// Reads the project's definitions and the layouts materialization recorded.
    pub async fn open(
        features: FeatureStore,
        online: Arc<dyn OnlineStore>,
        project: &str,
    ) -> Result<Self> {
        let resolved = Self::resolve(&features, online.as_ref(), project).await?;
        Ok(Self {
            features,
            online,
            project: project.to_owned(),
            resolved: Arc::new(RwLock::new(Arc::new(resolved))),
        })
    }

    async fn resolve(
        features: &FeatureStore,
        online: &dyn OnlineStore,
        project: &str,
    ) -> Result<Resolved> {
        let applied = features.registry().get(project, RefVersion::Latest).await?;
        let mut views = HashMap::new();
        for v in applied.repo.feature_views.iter().filter(|v| v.online) {
            let Some(mark) = online.mark(&layout_mark(project, &v.name)).await? else {
                continue;
            };
            let layout: Layout = serde_json::from_slice(&mark)
                .map_err(|e| Error::corrupt("layout mark", &v.name, e.to_string()))?;
            // A layout of other keys or types than the definitions now say is stale: skip it
            // until the view is materialized again.
            let keys = applied.repo.join_keys(v);
            let declared_match = v.schema.is_empty()
                || v.schema.iter().all(|f| {
                    layout
                        .features
                        .iter()
                        .any(|(n, t)| *n == f.name && *t == f.dtype)
                });
            let layout_keys: Vec<&String> = layout.join_keys.iter().map(|(k, _)| k).collect();
            if layout_keys != keys.iter().collect::<Vec<_>>() || !declared_match {
                continue;
            }
            let positions = layout
                .features
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (n.clone(), i))
                .collect();
            views.insert(
                v.name.clone(),
                OnlineView {
                    layout,
                    ttl_ns: ttl_ns(v.ttl),
                    positions,
                },
            );
        }
        Ok(Resolved {
            applied,
            views,
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The definitions and layouts in use.
    fn current(&self) -> Result<Arc<Resolved>> {
        Ok(self
            .resolved
            .read()
            .map_err(|_| Error::unavailable("poisoned lock"))?
            .clone())
    }

    /// Re-reads the definitions and layouts when the registry has a newer version (or the
    /// layouts changed); answers whether anything was re-read.
    pub async fn refresh(&self) -> Result<bool> {
        let fresh = Self::resolve(&self.features, self.online.as_ref(), &self.project).await?;
        let current = self.current()?;
        let changed = fresh.applied.version != current.applied.version
            || fresh.views.len() != current.views.len()
            || fresh
                .views
                .iter()
                .any(|(n, v)| current.views.get(n).is_none_or(|c| c.layout != v.layout));
        if changed {
            *self
                .resolved
                .write()
                .map_err(|_| Error::unavailable("poisoned lock"))? = Arc::new(fresh);
        }
        Ok(changed)
    }

    /// Calls [`refresh`](Self::refresh) every `every` on the current tokio runtime until the
    /// answer is dropped, so that a fresh `apply` or materialization reaches lookups within
    /// one interval. A failed refresh is logged (`tracing` warning) and tried again at the
    /// next tick; lookups keep the definitions they had.
    ///
    /// `InvalidArgument` outside a tokio runtime.
    pub fn spawn_refresh(&self, every: Duration) -> Result<RefreshTask> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::invalid("features refresh", "spawn_refresh needs a tokio runtime")
        })?;
        let client = self.clone();
        Ok(RefreshTask(runtime.spawn(async move {
            let mut tick = tokio::time::interval(every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is immediate, and the definitions were just read.
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(e) = client.refresh().await {
                    tracing::warn!(project = %client.project, error = %e, "feature definitions were not refreshed");
                }
            }
        })))
    }

    /// The join keys (and their types) that `selection`'s features are looked up by.
    pub fn join_keys(&self, selection: &FeatureSelection) -> Result<Vec<(String, ValueType)>> {
        Ok(self.current()?.plan(selection, false)?.key_types.clone())
    }

    /// The request fields (and their types) `selection`'s on-demand features read: entity
    /// columns a lookup must carry besides the join keys.
    pub fn request_fields(&self, selection: &FeatureSelection) -> Result<Vec<(String, ValueType)>> {
        Ok(self.lookup_inputs(selection)?.1)
    }

    /// The join keys and the request fields of `selection`, from one plan lookup.
    #[allow(clippy::type_complexity)]
    pub fn lookup_inputs(
        &self,
        selection: &FeatureSelection,
    ) -> Result<(Vec<(String, ValueType)>, Vec<(String, ValueType)>)> {
        let plan = self.current()?.plan(selection, false)?;
        Ok((plan.key_types.clone(), plan.request_fields.clone()))
    }

    /// The registry version in use.
    pub fn registry_version(&self) -> Result<mlops_core::Version> {
        Ok(self.current()?.applied.version)
    }

    /// The online store.
    pub fn store(&self) -> &Arc<dyn OnlineStore> {
        &self.online
    }

    /// The features of `selection` for each entity row (`entities`: join-key columns, every
    /// column of one length), column-oriented; see the [module docs](self) for statuses.
    pub async fn get_online_features(
        &self,
        selection: &FeatureSelection,
        entities: &[(String, Vec<FeatureValue>)],
        full_feature_names: bool,
    ) -> Result<OnlineResponse> {
        let resolved = self.current()?;
        let plan = resolved.plan(selection, full_feature_names)?;
        let n = rows_of(entities, "entities", "entity column")?;
        let width: usize = plan.views.iter().map(|v| v.names.len()).sum();
        let mut feature_names: Vec<String> = Vec::with_capacity(entities.len() + width);
        let mut results: Vec<FeatureVector> = Vec::with_capacity(entities.len() + width);
        for (name, v) in entities {
            if plan.views.iter().any(|p| p.names.contains(name)) {
                return Err(collision(name));
            }
            // Join keys echo in their key's type ("1001" for an integer key answers 1001).
            let values = match plan.key_types.iter().find(|(k, _)| k == name) {
                Some((_, t)) => v.iter().map(|x| key_value(x, *t).into_owned()).collect(),
                None => v.clone(),
            };
            feature_names.push(name.clone());
            results.push(FeatureVector {
                values,
                statuses: vec![FeatureStatus::Present; n],
                event_timestamps_ns: vec![0; n],
            });
        }
        let now = now_ns();
        // Every view's keys first, then one read of all their tables (one round trip to a
        // store that pipelines), then the columns.
        let mut encoded = Vec::with_capacity(plan.views.len());
        for planned in &plan.views {
            encoded.push(encode_keys(&resolved, planned, entities, n)?);
        }
        let reads: Vec<(&str, &[Bytes])> = encoded
            .iter()
            .map(|(view, keys, _)| (view.layout.table.as_str(), keys.as_slice()))
            .collect();
        let found = self.online.read_tables(&reads).await?;
        for ((planned, (view, _, slots)), found) in plan.views.iter().zip(&encoded).zip(found) {
            fill(view, planned, slots, &found, now, n, &mut results)?;
            feature_names.extend(planned.names.iter().cloned());
        }
        if !plan.on_demand.is_empty() {
            self.on_demand(
                &plan,
                entities,
                n,
                full_feature_names,
                &mut feature_names,
                &mut results,
            )?;
        }
        Ok(OnlineResponse {
            feature_names,
            results,
        })
    }

    /// Computes the plan's on-demand features from the looked-up columns and the request
    /// fields among `entities`, then drops the columns fetched only as their inputs.
    fn on_demand(
        &self,
        plan: &LookupPlan,
        entities: &[(String, Vec<FeatureValue>)],
        n: usize,
        full: bool,
        names: &mut Vec<String>,
        results: &mut Vec<FeatureVector>,
    ) -> Result<()> {
        use crate::ondemand::Input;
        for od in &plan.on_demand {
            let column = |input: &Input| -> Result<ArrayRef> {
                let (name, values) = match input {
                    Input::Request(field) => {
                        let values = entities
                            .iter()
                            .find(|(k, _)| k == field)
                            .map(|(_, v)| v)
                            .ok_or_else(|| {
                                Error::invalid(
                                    "on-demand feature",
                                    format!(
                                        "on-demand feature view {} needs request field {field}: send it with the entities",
                                        od.view.name
                                    ),
                                )
                            })?;
                        (field.clone(), values)
                    }
                    Input::Feature(v, f) => {
                        let name = output_name(v, f, full);
                        let i = names.iter().position(|x| *x == name).ok_or_else(|| {
                            Error::invalid("on-demand feature", format!("{name} was not looked up"))
                        })?;
                        (name, &results[i].values)
                    }
                };
                FeatureValue::to_arrow(values, &name)
            };
            let computed = od.compute(n, &column, self.features.udfs())?;
            for (feature, array) in computed {
                let values = (0..n)
                    .map(|i| FeatureValue::from_arrow(&array, i))
                    .collect::<Result<Vec<_>>>()?;
                let statuses = values
                    .iter()
                    .map(|v| {
                        if v.is_null() {
                            FeatureStatus::NullValue
                        } else {
                            FeatureStatus::Present
                        }
                    })
                    .collect();
                names.push(output_name(&od.view.name, &feature, full));
                results.push(FeatureVector {
                    values,
                    statuses,
                    event_timestamps_ns: vec![0; n],
                });
            }
        }
        if !plan.hidden.is_empty() {
            let mut i = 0;
            results.retain(|_| {
                let keep = !plan.hidden.contains(&names[i]);
                i += 1;
                keep
            });
            names.retain(|name| !plan.hidden.contains(name));
        }
        Ok(())
    }
}

/// A view with its encoded entity keys and, per entity row, the index of its key (`None`: a
/// null key, not looked up).
type EncodedKeys<'a> = (&'a OnlineView, Vec<Bytes>, Vec<Option<usize>>);

/// A view's encoded entity keys.
fn encode_keys<'a>(
    resolved: &'a Resolved,
    planned: &PlannedView,
    entities: &[(String, Vec<FeatureValue>)],
    n: usize,
) -> Result<EncodedKeys<'a>> {
    let view = resolved.views.get(&planned.view).ok_or_else(|| {
        Error::invalid(
            "feature view",
            format!("feature view {} has not been materialized", planned.view),
        )
    })?;
    let key_columns: Vec<(&Vec<FeatureValue>, ValueType)> = view
        .layout
        .join_keys
        .iter()
        .map(|(k, dtype)| {
            entities
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| (v, *dtype))
                .ok_or_else(|| {
                    Error::invalid(
                        "entities",
                        format!(
                            "the entity rows have no join key {k} (view {} needs it)",
                            planned.view
                        ),
                    )
                })
        })
        .collect::<Result<_>>()?;
    let mut keys = Vec::with_capacity(n);
    let mut slots = Vec::with_capacity(n);
    let mut buf = BytesMut::new();
    for row in 0..n {
        buf.clear();
        let mut null = false;
        for (col, dtype) in &key_columns {
            if push_key(&mut buf, &key_value(&col[row], *dtype))?.is_none() {
                null = true;
                break;
            }
        }
        if null {
            slots.push(None);
        } else {
            slots.push(Some(keys.len()));
            keys.push(buf.split().freeze());
        }
    }
    Ok((view, keys, slots))
}

/// Appends a view's feature columns, from what its table held for each row's key.
fn fill(
    view: &OnlineView,
    planned: &PlannedView,
    slots: &[Option<usize>],
    found: &[Option<mlops_core::online::OnlineValue>],
    now: i64,
    n: usize,
    results: &mut Vec<FeatureVector>,
) -> Result<()> {
    let width = view.layout.features.len();
    let first = results.len();
    results.extend(planned.positions.iter().map(|_| FeatureVector {
        values: Vec::with_capacity(n),
        statuses: Vec::with_capacity(n),
        event_timestamps_ns: Vec::with_capacity(n),
    }));
    let columns = &mut results[first..];
    for slot in slots {
        match slot.and_then(|i| found.get(i).and_then(Option::as_ref)) {
            None => {
                for c in columns.iter_mut() {
                    c.values.push(FeatureValue::Null);
                    c.statuses.push(FeatureStatus::NotFound);
                    c.event_timestamps_ns.push(0);
                }
            }
            Some(v) => {
                let stale = view
                    .ttl_ns
                    .is_some_and(|ttl| now.saturating_sub(v.event_ts_ns) > ttl);
                let mut values = decode_values(&v.values, width)?;
                for (c, &p) in columns.iter_mut().zip(&planned.positions) {
                    let value = values.get_mut(p).map_or(FeatureValue::Null, std::mem::take);
                    let (value, status) = if stale {
                        (FeatureValue::Null, FeatureStatus::OutsideMaxAge)
                    } else if value.is_null() {
                        (value, FeatureStatus::NullValue)
                    } else {
                        (value, FeatureStatus::Present)
                    };
                    c.values.push(value);
                    c.statuses.push(status);
                    c.event_timestamps_ns.push(v.event_ts_ns);
                }
            }
        }
    }
    Ok(())
}

/// What a push wrote, per view reading the pushed source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PushReport {
    /// The source pushed to.
    pub source: String,
    /// Rows received.
    pub rows: usize,
    /// Per view: entity rows written, and rows skipped because a newer row was stored.
    pub views: Vec<(String, usize, usize)>,
    /// The source version the rows were appended to, for offline pushes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline: Option<SourceLineage>,
}

/// Where pushed rows go (Feast's `PushMode`: `online`, `offline`, `online_and_offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PushTarget {
    /// The online store only (the default, as Feast's).
    #[default]
    Online,
    /// The source only (a new version of its dataset).
    Offline,
    /// Both: the source first, then the online store.
    OnlineAndOffline,
}

impl PushTarget {
    fn online(self) -> bool {
        matches!(self, Self::Online | Self::OnlineAndOffline)
    }

    fn offline(self) -> bool {
        matches!(self, Self::Offline | Self::OnlineAndOffline)
    }
}

impl std::str::FromStr for PushTarget {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "online" => Ok(Self::Online),
            "offline" => Ok(Self::Offline),
            "online_and_offline" => Ok(Self::OnlineAndOffline),
            other => Err(Error::invalid(
                "push target",
                format!("{other:?} is not online, offline or online_and_offline"),
            )),
        }
    }
}

impl OnlineFeatures {
    /// Writes rows of `source` (its join keys, timestamp columns and features, as columns of
    /// values) to the online table of every materialized online view that reads it; the
    /// newer row per key wins, as in materialization. Timestamps are
    /// [`FeatureValue::Timestamp`] values.
    pub async fn push(
        &self,
        source: &str,
        columns: &[(String, Vec<FeatureValue>)],
    ) -> Result<PushReport> {
        self.push_to(source, columns, PushTarget::Online).await
    }

    /// Pushes rows to `target`. Offline, the rows are appended to the source as a new version
    /// of its dataset (the source reader's [`append`](crate::SourceReader::append); Parquet
    /// path sources are read-only). Every row is checked for every target before anything is
    /// written; with both targets the source is written first, so a failure of the online
    /// write leaves rows that the next materialization brings online.
    pub async fn push_to(
        &self,
        source: &str,
        columns: &[(String, Vec<FeatureValue>)],
        target: PushTarget,
    ) -> Result<PushReport> {
        let resolved = self.current()?;
        let repo = &resolved.applied.repo;
        let src = repo.source(source).ok_or_else(|| {
            Error::invalid(
                "push source",
                format!(
                    "project {} has no source {source}{}",
                    repo.project,
                    known(repo.sources.iter().map(|s| &s.name))
                ),
            )
        })?;
        let n = rows_of(columns, "push", "column")?;
        let col = |name: &str, view: &str| -> Result<&Vec<FeatureValue>> {
            columns
                .iter()
                .find(|(c, _)| c == name)
                .map(|(_, v)| v)
                .ok_or_else(|| {
                    Error::invalid(
                        "push",
                        format!("the pushed rows have no column {name} (view {view} needs it)"),
                    )
                })
        };
        let stamp = |v: &FeatureValue, name: &str, row: usize| -> Result<Option<i64>> {
            match v {
                FeatureValue::Timestamp(us) => Ok(Some(us.saturating_mul(1_000))),
                FeatureValue::Null => Ok(None),
                other => Err(Error::invalid(
                    "push",
                    format!("row {row}: {name} is {other:?}, not a timestamp"),
                )),
            }
        };
        let mut report = PushReport {
            source: source.to_owned(),
            rows: n,
            ..PushReport::default()
        };
        let mut writes: Vec<(&str, &str, Vec<OnlineRow>)> = Vec::new();
        for view in repo
            .feature_views
            .iter()
            .filter(|v| v.source == source && v.online && target.online())
        {
            let Some(online) = resolved.views.get(&view.name) else {
                continue;
            };
            let event = col(&src.timestamp_field, &view.name)?;
            let created = match &src.created_timestamp_column {
                Some(c) => columns.iter().find(|(n, _)| n == c).map(|(_, v)| v),
                None => None,
            };
            let keys: Vec<(&Vec<FeatureValue>, ValueType)> = online
                .layout
                .join_keys
                .iter()
                .map(|(k, t)| Ok((col(k, &view.name)?, *t)))
                .collect::<Result<_>>()?;
            let features: Vec<(&Vec<FeatureValue>, ValueType)> = online
                .layout
                .features
                .iter()
                .map(|(f, t)| Ok((col(f, &view.name)?, *t)))
                .collect::<Result<_>>()?;
            let mut rows = Vec::with_capacity(n);
            for row in 0..n {
                let Some(ev) = stamp(&event[row], &src.timestamp_field, row)? else {
                    return Err(Error::invalid(
                        "push",
                        format!("row {row} has no {}", src.timestamp_field),
                    ));
                };
                let cr = match created {
                    Some(c) => stamp(&c[row], "created timestamp", row)?.unwrap_or(i64::MIN),
                    None => i64::MIN,
                };
                let mut key = BytesMut::new();
                let mut null = false;
                for (c, t) in &keys {
                    null |= push_key(&mut key, &key_value(&c[row], *t))?.is_none();
                }
                if null {
                    return Err(Error::invalid(
                        "push",
                        format!("row {row} has a null join key"),
                    ));
                }
                let mut values = BytesMut::new();
                for (c, t) in &features {
                    push_value(&mut values, &conform(&c[row], *t, row)?)?;
                }
                rows.push(OnlineRow::new(key.freeze(), ev, cr, values.freeze()));
            }
            writes.push((&view.name, &online.layout.table, rows));
        }
        if target.online() && writes.is_empty() {
            return Err(Error::invalid(
                "push source",
                format!(
                    "no materialized online feature view reads source {source}; materialize one first"
                ),
            ));
        }
        if target.offline() {
            let arrays = columns
                .iter()
                .map(|(name, values)| Ok((name.clone(), FeatureValue::to_arrow(values, name)?)))
                .collect::<Result<Vec<_>>>()?;
            let batch = RecordBatch::try_from_iter(arrays)
                .map_err(|e| Error::invalid("push", e.to_string()))?;
            report.offline = Some(self.features.reader().append(src, &batch).await?);
        }
        for (view, table, rows) in writes {
            let s = self.online.write(table, &rows, &[]).await?;
            report
                .views
                .push((view.to_owned(), s.written, s.skipped_older));
        }
        Ok(report)
    }

    /// The definitions in use (a registry version's).
    pub fn applied(&self) -> Result<AppliedRepo> {
        Ok(self.current()?.applied.clone())
    }

    /// The types of a source's columns as the online views reading it store them: join keys,
    /// features, and the timestamp columns (as `UnixTimestamp`).
    pub fn source_types(&self, source: &str) -> Result<HashMap<String, ValueType>> {
        let resolved = self.current()?;
        let repo = &resolved.applied.repo;
        let src = repo.source(source).ok_or_else(|| {
            Error::invalid(
                "push source",
                format!("project {} has no source {source}", repo.project),
            )
        })?;
        let mut out = HashMap::new();
        out.insert(src.timestamp_field.clone(), ValueType::UnixTimestamp);
        if let Some(c) = &src.created_timestamp_column {
            out.insert(c.clone(), ValueType::UnixTimestamp);
        }
        for view in repo.feature_views.iter().filter(|v| v.source == source) {
            if let Some(o) = resolved.views.get(&view.name) {
                out.extend(o.layout.join_keys.iter().cloned());
                out.extend(o.layout.features.iter().cloned());
            }
        }
        Ok(out)
    }
}

/// The rows of columns of values, which must all have the first one's length.
fn rows_of(
    columns: &[(String, Vec<FeatureValue>)],
    what: &'static str,
    kind: &str,
) -> Result<usize> {
    let n = columns.first().map_or(0, |(_, v)| v.len());
    match columns.iter().find(|(_, v)| v.len() != n) {
        Some((name, v)) => Err(Error::invalid(
            what,
            format!("{kind} {name} has {} values, the first has {n}", v.len()),
        )),
        None => Ok(n),
    }
}

/// A pushed value in a feature's stored type (integers widen to floats; anything else must
/// match).
fn conform(v: &FeatureValue, dtype: ValueType, row: usize) -> Result<FeatureValue> {
    use FeatureValue as F;
    Ok(match (v, dtype) {
        (F::Null, _) => F::Null,
        (F::Int32(i), ValueType::Int32) => F::Int32(*i),
        (F::Int32(i), ValueType::Int64) => F::Int64(i64::from(*i)),
        (F::Int64(i), ValueType::Int64) => F::Int64(*i),
        (F::Int64(i), ValueType::Int32) => {
            F::Int32(i32::try_from(*i).map_err(|_| {
                Error::invalid("push", format!("row {row}: {i} does not fit Int32"))
            })?)
        }
        (F::Float32(f), ValueType::Float32) => F::Float32(*f),
        (F::Float64(f), ValueType::Float32) => F::Float32(*f as f32),
        (F::Float32(f), ValueType::Float64) => F::Float64(f64::from(*f)),
        (F::Float64(f), ValueType::Float64) => F::Float64(*f),
        (F::Int32(i), ValueType::Float64) => F::Float64(f64::from(*i)),
        (F::Int64(i), ValueType::Float64) => F::Float64(*i as f64),
        (F::Int64(i), ValueType::Float32) => F::Float32(*i as f32),
        (F::String(s), ValueType::String) => F::String(s.clone()),
        (F::Bool(b), ValueType::Bool) => F::Bool(*b),
        (F::Bytes(b), ValueType::Bytes) => F::Bytes(b.clone()),
        (F::Timestamp(t), ValueType::UnixTimestamp) => F::Timestamp(*t),
        (other, _) => {
            return Err(Error::invalid(
                "push",
                format!("row {row}: {other:?} is not a {dtype:?} value"),
            ));
        }
    })
}

/// A join-key value as the key's type: an integer key accepts integers sent as strings
/// (`"1001"`), as Feast's server does.
fn key_value(v: &FeatureValue, dtype: ValueType) -> std::borrow::Cow<'_, FeatureValue> {
    use std::borrow::Cow;
    match (v, dtype) {
        (FeatureValue::String(s), ValueType::Int32 | ValueType::Int64) => {
            match s.trim().parse::<i64>() {
                Ok(i) => Cow::Owned(FeatureValue::Int64(i)),
                Err(_) => Cow::Borrowed(v),
            }
        }
        _ => Cow::Borrowed(v),
    }
}

/// `2026-01-01T00:00:00Z`, with a fraction only when there is one (3, 6 or 9 digits).
pub fn rfc3339(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let t = if secs >= 0 {
        std::time::UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    };
    let whole = humantime::format_rfc3339_seconds(t).to_string();
    let base = whole.trim_end_matches('Z');
    if nanos == 0 {
        format!("{base}Z")
    } else if nanos % 1_000_000 == 0 {
        format!("{base}.{:03}Z", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!("{base}.{:06}Z", nanos / 1_000)
    } else {
        format!("{base}.{nanos:09}Z")
    }
}

/// Entity rows of a batch as columns of values (for [`OnlineFeatures::get_online_features`]).
pub fn entity_columns(batch: &RecordBatch) -> Result<Vec<(String, Vec<FeatureValue>)>> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, col)| {
            let values = (0..batch.num_rows())
                .map(|i| FeatureValue::from_arrow(col, i))
                .collect::<Result<_>>()?;
            Ok((f.name().clone(), values))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn timestamps_print_as_feast_does() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_294_978_000_000_000), "2026-12-03T10:49:38Z");
        assert_eq!(
            rfc3339(1_796_294_978_250_000_000),
            "2026-12-03T10:49:38.250Z"
        );
        assert_eq!(
            rfc3339(1_796_294_978_000_001_000),
            "2026-12-03T10:49:38.000001Z"
        );
    }
}
