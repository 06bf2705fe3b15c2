//! A feature store with Feast's semantics, in process, over any [`Store`].
//!
//! - [`definitions`]: entities, data sources, feature views and services ([`FeatureRepo`]), in
//!   Rust builders or a YAML feature repo with Feast's field names.
//! - [`registry`]: `apply` and `plan` — each project's definitions as one versioned document in
//!   the store, visible to every reader as soon as it is applied.
//! - [`historical`]: point-in-time-correct training sets (Feast's `get_historical_features`) as
//!   a sort-merge join over Arrow, checked value for value against Feast itself.
//! - [`online`]: materialization into an online store and lookups by entity key, in process
//!   ([`OnlineFeatures`]) and over Feast's HTTP API (`http`, feature `http`).
//! - [`ondemand`]: request-time features computed from request fields and other views'
//!   features (a small expression language, or Rust closures), in both paths.
//! - [`serving`]: [`FeatureLookup`], which completes a served model's requests with their
//!   features by entity key.
//! - [`source`]: how sources' rows are read ([`SourceReader`]; Parquet paths here, the store's
//!   datasets through `mlops_steps::features::StoreSources`).
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn mlops_core::Store>, entities: arrow::array::RecordBatch) -> mlops_core::Result<()> {
//! use std::sync::Arc;
//! use mlops_features::{FeatureRepo, FeatureSelection, FeatureStore, HistoricalOptions, ParquetFiles};
//!
//! let repo = FeatureRepo::from_yaml(&std::fs::read_to_string("features.yaml").map_err(|e| mlops_core::Error::io("feature repo", "read", "features.yaml", e))?)?;
//! let features = FeatureStore::new(store, Arc::new(ParquetFiles::new(".")));
//! features.registry().apply(&repo).await?;
//! let training = features
//!     .get_historical_features(
//!         &repo.project,
//!         &[entities],
//!         &FeatureSelection::service("churn_v1"),
//!         HistoricalOptions::default(),
//!     )
//!     .await?;
//! println!("{} rows; lineage {:?}", training.rows.num_rows(), training.lineage);
//! # Ok(()) }
//! ```

pub mod definitions;
pub mod historical;
#[cfg(feature = "http")]
pub mod http;
pub mod ondemand;
pub mod online;
mod reduce;
pub mod registry;
pub mod serving;
pub mod source;

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use mlops_core::store::RefVersion;
use mlops_core::{Digest, Error, Result, Store, Version};
use serde::{Deserialize, Serialize};

pub use definitions::{
    DataSource, Entity, FeatureRef, FeatureRepo, FeatureSelection, FeatureService, FeatureView,
    Field, Resolution, SourceLocation, ValueType, ViewRequest,
};
pub use historical::{HistoricalOptions, ViewTable, entity_timestamp_column, point_in_time_join};
pub use ondemand::{OnDemandFeature, OnDemandFeatureView, OnDemandRequest, Udf};
#[cfg(feature = "redis")]
pub use online::RedisOnlineStore;
pub use online::{
    EmbeddedOnlineStore, FeatureStatus, FeatureValue, MaterializeOptions, MaterializeReport,
    MemoryOnlineStore, OnlineFeatures, OnlineResponse, PushReport, PushTarget, RefreshTask,
};
pub use registry::{Applied, AppliedRepo, Change, ChangeAction, FeatureRegistry, Plan};
pub use serving::FeatureLookup;
pub use source::{ParquetFiles, SourceLineage, SourceReader, SourceStream, SourceTable};

/// Definitions from the registry, sources through a reader: the feature store's entry point.
#[derive(Debug, Clone)]
pub struct FeatureStore {
    registry: FeatureRegistry,
    reader: Arc<dyn SourceReader>,
    udfs: ondemand::Udfs,
}

/// A training set: the entity rows with their features, and where every value came from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrainingSet {
    /// Entity columns (labels included), then the features.
    pub rows: RecordBatch,
    /// The definitions' version and each source's version.
    pub lineage: TrainingSetLineage,
}

/// What a training set was built from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TrainingSetLineage {
    /// The project.
    pub project: String,
    /// The registry version of the definitions used.
    pub registry_version: Version,
    /// The digest of that registry document.
    pub registry_digest: Digest,
    /// The features, as `view:feature`, in result order.
    pub features: Vec<String>,
    /// The result's feature columns (`feature` or `view__feature`), in order: what a model
    /// trains on, the entity columns and labels excluded.
    #[serde(default)]
    pub feature_columns: Vec<String>,
    /// The feature service requested, if one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_service: Option<String>,
    /// Each view's source as read.
    pub sources: Vec<SourceLineage>,
}

impl TrainingSetLineage {
    /// As string metadata (for a dataset version or a run's tags): `features.project`,
    /// `features.registry_version`, `features.registry_digest`, `features.service`,
    /// `features.columns` (the feature columns as a JSON array) and `features.lineage` (this
    /// whole record as JSON).
    pub fn to_metadata(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        out.insert("features.project".to_owned(), self.project.clone());
        out.insert(
            "features.registry_version".to_owned(),
            self.registry_version.to_string(),
        );
        out.insert(
            "features.registry_digest".to_owned(),
            self.registry_digest.to_string(),
        );
        if let Some(s) = &self.feature_service {
            out.insert("features.service".to_owned(), s.clone());
        }
        out.insert(
            "features.columns".to_owned(),
            serde_json::to_string(&self.feature_columns).unwrap_or_default(),
        );
        out.insert(
            "features.lineage".to_owned(),
            serde_json::to_string(self).unwrap_or_default(),
        );
        out
    }
}

impl FeatureStore {
    /// Definitions in `store`, sources read by `reader`.
    pub fn new(store: Arc<dyn Store>, reader: Arc<dyn SourceReader>) -> Self {
        Self {
            registry: FeatureRegistry::new(store),
            reader,
            udfs: ondemand::Udfs::default(),
        }
    }

    /// Registers `udf` as the closure named `name`, which on-demand features declared with
    /// `udf: name` call (see [`ondemand`]); lookups opened from this store share it.
    pub fn with_udf(
        mut self,
        name: impl Into<String>,
        udf: impl Fn(&RecordBatch) -> Result<arrow::array::ArrayRef> + Send + Sync + 'static,
    ) -> Self {
        self.udfs.0.insert(name.into(), Arc::new(udf));
        self
    }

    /// The registered closures.
    pub fn udfs(&self) -> &ondemand::Udfs {
        &self.udfs
    }

    /// The registry (apply, plan, get).
    pub fn registry(&self) -> &FeatureRegistry {
        &self.registry
    }

    /// The source reader.
    pub fn reader(&self) -> &Arc<dyn SourceReader> {
        &self.reader
    }

    /// A point-in-time-correct training set (see [`historical`]) of the project's latest
    /// definitions: every entity row, in order, with the selected features.
    pub async fn get_historical_features(
        &self,
        project: &str,
        entity_rows: &[RecordBatch],
        selection: &FeatureSelection,
        options: HistoricalOptions,
    ) -> Result<TrainingSet> {
        let applied = self.registry.get(project, RefVersion::Latest).await?;
        self.historical_from(&applied, entity_rows, selection, options)
            .await
    }

    /// Like [`get_historical_features`](Self::get_historical_features), with definitions
    /// already read (a pinned registry version).
    pub async fn historical_from(
        &self,
        applied: &AppliedRepo,
        entity_rows: &[RecordBatch],
        selection: &FeatureSelection,
        options: HistoricalOptions,
    ) -> Result<TrainingSet> {
        let first = entity_rows
            .first()
            .ok_or_else(|| Error::invalid("entity rows", "no entity rows were given"))?;
        let entity = historical::concat(&first.schema(), entity_rows)?;
        // Fail on the entity rows before reading any source.
        let ts_name = entity_timestamp_column(&entity.schema())?;
        let resolution = applied.repo.resolve_all(selection)?;
        let requests = resolution.views.clone();
        let entity_ts = Arc::new(historical::timestamps_ns(
            entity
                .column_by_name(&ts_name)
                .ok_or_else(|| Error::invalid("entity rows", format!("no column {ts_name}")))?,
            &format!("entity column {ts_name}"),
        )?);
        // Each view's source streams through a reducer on a task of its own: memory is the
        // rows able to answer some entity row, not the source's history.
        let reads = requests.into_iter().map(|request| {
            let reader = self.reader.clone();
            let (entity, entity_ts) = (entity.clone(), entity_ts.clone());
            let task = tokio::spawn(async move {
                let mut columns = request.join_keys.clone();
                columns.push(request.source.timestamp_field.clone());
                columns.extend(request.source.created_timestamp_column.iter().cloned());
                let inferred = request.features.is_empty();
                let mut stream = if inferred {
                    reader.read_stream(&request.source, None).await?
                } else {
                    columns.extend(request.features.iter().cloned());
                    reader.read_stream(&request.source, Some(&columns)).await?
                };
                let mut request = request;
                if inferred {
                    request.features = stream
                        .schema
                        .fields()
                        .iter()
                        .map(|f| f.name().clone())
                        .filter(|n| !columns.contains(n))
                        .collect();
                }
                let mut reducer = reduce::Reducer::new(
                    &request,
                    stream.schema.clone(),
                    &entity,
                    &entity_ts,
                    options,
                )?;
                while let Some(batch) = futures::StreamExt::next(&mut stream.batches).await {
                    reducer.push(&batch?)?;
                }
                Ok::<_, Error>((
                    ViewTable {
                        request,
                        rows: reducer.finish()?,
                    },
                    stream.lineage,
                ))
            });
            async move { task.await.map_err(|e| Error::backend("tokio", e))? }
        });
        let read: Vec<(ViewTable, SourceLineage)> = futures::future::try_join_all(reads).await?;
        let mut features = Vec::new();
        let mut sources: Vec<SourceLineage> = Vec::new();
        let mut views = Vec::with_capacity(read.len());
        for (view, lineage) in read {
            features.extend(
                view.request
                    .features
                    .iter()
                    .filter(|f| {
                        !resolution
                            .hidden
                            .iter()
                            .any(|(v, h)| *v == view.request.view.name && h == *f)
                    })
                    .map(|f| format!("{}:{f}", view.request.view.name)),
            );
            if !sources.contains(&lineage) {
                sources.push(lineage);
            }
            views.push(view);
        }
        let entity_columns: Vec<String> = entity
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for od in &resolution.on_demand {
            features.extend(od.features.iter().map(|f| format!("{}:{f}", od.view.name)));
        }
        let full = options.full_feature_names;
        let udfs = self.udfs.clone();
        let rows = tokio::task::spawn_blocking(move || {
            let joined = point_in_time_join(&entity, &views, options)?;
            ondemand::complete_batch(joined, &resolution, full, &udfs)
        })
        .await
        .map_err(|e| Error::backend("tokio", e))??;
        let feature_columns = rows
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !entity_columns.contains(n))
            .collect();
        Ok(TrainingSet {
            rows,
            lineage: TrainingSetLineage {
                project: applied.repo.project.clone(),
                registry_version: applied.version,
                registry_digest: applied.digest,
                features,
                feature_columns,
                feature_service: match selection {
                    FeatureSelection::Service(s) => Some(s.clone()),
                    FeatureSelection::Features(_) => None,
                },
                sources,
            },
        })
    }
}
