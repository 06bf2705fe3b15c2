//! The feature store over the store's datasets: [`StoreSources`] reads dataset sources through
//! [`Datasets`] (and Parquet paths through [`ParquetFiles`]) and appends offline pushes to
//! them, [`write_training_set`] keeps a training set as a dataset version that records its
//! lineage, and the `training_set` pipeline step ([`TrainingSetStep`]) builds one, cached
//! while the definitions, the sources and the entity rows stay the same.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::RecordBatch;
use async_trait::async_trait;
use mlops_core::store::RefVersion;
use mlops_core::{DatasetName, Error, Result, Store};
use mlops_features::source::conform_rows;
use mlops_features::{
    DataSource, FeatureRegistry, FeatureSelection, FeatureStore, HistoricalOptions, ParquetFiles,
    SourceLineage, SourceLocation, SourceReader, SourceStream, SourceTable, TrainingSet,
    TrainingSetLineage,
};
use mlops_pipeline::{Outputs, Step, StepContext, parse_params};
use serde::Deserialize;

use crate::{DatasetRef, StepEnv};
use mlops_storage::dataset::DatasetVersion;
use mlops_storage::{Datasets, ReadOptions, SchemaPolicy, WriteOptions};

/// Reads feature sources from the store's datasets and from Parquet paths (relative to
/// `root`, the feature repo's folder).
#[derive(Debug, Clone)]
pub struct StoreSources {
    datasets: Datasets,
    files: ParquetFiles,
}

impl StoreSources {
    /// Dataset sources from `store`, Parquet paths resolved against `root`.
    pub fn new(store: Arc<dyn Store>, root: impl Into<PathBuf>) -> Self {
        Self {
            datasets: Datasets::new(store),
            files: ParquetFiles::new(root),
        }
    }
}

#[async_trait]
impl SourceReader for StoreSources {
    async fn read(&self, source: &DataSource, columns: Option<&[String]>) -> Result<SourceTable> {
        if !matches!(source.location, SourceLocation::Dataset { .. }) {
            return self.files.read(source, columns).await;
        }
        let stream = self.read_stream(source, columns).await?;
        let batches: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream.batches).await?;
        let rows = arrow::compute::concat_batches(&stream.schema, &batches)
            .map_err(|e| Error::invalid("source", e.to_string()))?;
        Ok(SourceTable::new(rows, stream.lineage))
    }

    async fn read_stream(
        &self,
        source: &DataSource,
        columns: Option<&[String]>,
    ) -> Result<SourceStream> {
        let (name, version) = match &source.location {
            SourceLocation::Dataset { name, version } => (name, *version),
            _ => return self.files.read_stream(source, columns).await,
        };
        let at = version.map_or(RefVersion::Latest, RefVersion::Exact);
        // Pin the version first, so the rows and the lineage are of the same one.
        let found = self.datasets.version(name, at).await?;
        let options = match columns {
            Some(cols) => ReadOptions::default().with_columns(cols.iter().cloned()),
            None => ReadOptions::default(),
        };
        let stream = self
            .datasets
            .read(name, RefVersion::Exact(found.version), options)
            .await
            .map_err(|e| e.context(format!("source {}", source.name)))?;
        Ok(SourceStream::new(
            stream.schema,
            stream.batches,
            SourceLineage::new(
                source.name.clone(),
                format!("dataset {name}@{}", found.version),
                Some(found.version),
                found.digest,
            ),
        ))
    }

    async fn current(&self, source: &DataSource) -> Result<SourceLineage> {
        let SourceLocation::Dataset { name, version } = &source.location else {
            return self.files.current(source).await;
        };
        let at = version.map_or(RefVersion::Latest, RefVersion::Exact);
        let found = self.datasets.version(name, at).await?;
        Ok(SourceLineage::new(
            source.name.clone(),
            format!("dataset {name}@{}", found.version),
            Some(found.version),
            found.digest,
        ))
    }

    async fn append(&self, source: &DataSource, rows: &RecordBatch) -> Result<SourceLineage> {
        match &source.location {
            SourceLocation::Dataset {
                name,
                version: None,
            } => self.append_dataset(source, name, rows).await,
            SourceLocation::Dataset {
                name,
                version: Some(v),
            } => Err(Error::invalid(
                "offline push",
                format!(
                    "source {} reads {name} pinned at version {v}; pushed rows would never be read (unpin it to push)",
                    source.name
                ),
            )),
            _ => self.files.append(source, rows).await,
        }
    }
}

/// Times an offline push re-reads and retries when another writer committed first.
const APPEND_RETRIES: usize = 16;

impl StoreSources {
    /// Appends `rows` to dataset `name` as its next version: the latest version's rows, then
    /// `rows` conformed to its schema, committed only while that version is still the latest
    /// (re-read and retried otherwise), so concurrent pushes never lose rows.
    ///
    /// Rewrites the dataset's rows: a push costs the dataset's size (as Feast's file offline
    /// store does).
    async fn append_dataset(
        &self,
        source: &DataSource,
        name: &DatasetName,
        rows: &RecordBatch,
    ) -> Result<SourceLineage> {
        for _ in 0..APPEND_RETRIES {
            let latest = self.datasets.version(name, RefVersion::Latest).await?;
            let stream = self
                .datasets
                .read(
                    name,
                    RefVersion::Exact(latest.version),
                    ReadOptions::default(),
                )
                .await?;
            let schema = stream.schema.clone();
            let pushed = conform_rows(&source.name, &schema, rows)?;
            let old: Vec<RecordBatch> = futures::TryStreamExt::try_collect(stream.batches).await?;
            let mut options = WriteOptions::default()
                .with_if_latest(latest.version)
                .with_schema_policy(SchemaPolicy::MustMatch)
                .with_message(format!(
                    "push of {} rows to feature source {}",
                    rows.num_rows(),
                    source.name
                ));
            for (k, v) in &latest.manifest.metadata {
                options = options.with_metadata(k.clone(), v.clone());
            }
            let batches = old.into_iter().chain([pushed]).map(Ok);
            match self
                .datasets
                .write(name, schema, futures::stream::iter(batches), options)
                .await
            {
                Ok(v) => {
                    return Ok(SourceLineage::new(
                        source.name.clone(),
                        format!("dataset {name}@{}", v.version),
                        Some(v.version),
                        v.digest,
                    ));
                }
                Err(e) if e.is_conflict() => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "dataset",
            name,
            format!("the push gave up after {APPEND_RETRIES} concurrent writes got there first"),
        ))
    }
}

/// Writes a training set as the next version of dataset `name`, its lineage in the version's
/// metadata (`features.*` keys: project, registry version and digest, service, feature columns
/// and the whole lineage as JSON) on top of `options`' (its message, other metadata such as
/// `sensitive`), so training on it records where every feature came from.
pub async fn write_training_set(
    datasets: &Datasets,
    name: &DatasetName,
    set: &TrainingSet,
    options: WriteOptions,
) -> Result<DatasetVersion> {
    let mut options = options;
    for (k, v) in set.lineage.to_metadata() {
        options = options.with_metadata(k, v);
    }
    let batch = set.rows.clone();
    datasets
        .write(
            name,
            batch.schema(),
            futures::stream::once(async move { Ok(batch) }),
            options,
        )
        .await
}

/// The feature columns a training set's dataset version declares (its `features.columns`
/// metadata): what a model trained on it should read, when the training configuration names
/// none — not the join keys, the timestamps or other label columns.
pub fn feature_columns(metadata: &BTreeMap<String, String>) -> Option<Vec<String>> {
    metadata
        .get("features.columns")
        .and_then(|c| serde_json::from_str::<Vec<String>>(c).ok())
        .filter(|c| !c.is_empty())
}

/// The project that defines feature service `service`: `project` when given, else the one
/// project of the store that has it ([`Error::InvalidArgument`] when none or several do).
pub async fn service_project(
    registry: &FeatureRegistry,
    project: Option<&str>,
    service: &str,
) -> Result<String> {
    if let Some(p) = project {
        return Ok(p.to_owned());
    }
    let mut found = Vec::new();
    for p in registry.projects().await? {
        let applied = registry.get(&p, RefVersion::Latest).await?;
        if applied.repo.feature_service(service).is_some() {
            found.push(p);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::invalid(
            "feature service",
            format!(
                "no feature project in this store defines service {service} (mlops features apply)"
            ),
        )),
        _ => Err(Error::invalid(
            "feature service",
            format!(
                "projects {} all define service {service}: name the project",
                found.join(", ")
            ),
        )),
    }
}

/// `training_set`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSetParams {
    /// The feature project (default: the one project defining `service`).
    #[serde(default)]
    pub project: Option<String>,
    /// The feature service.
    #[serde(default)]
    pub service: Option<String>,
    /// Or feature references `view:feature`.
    #[serde(default)]
    pub features: Option<Vec<String>>,
    /// The dataset the training set is written to as its next version.
    pub dataset: DatasetName,
    /// Name feature columns `view__feature`.
    #[serde(default)]
    pub full_feature_names: bool,
    /// Feast's `filter_by_created_timestamp`.
    #[serde(default)]
    pub filter_by_created_timestamp: bool,
    /// The folder relative Parquet source paths start from (default: the working directory).
    #[serde(default)]
    pub root: Option<PathBuf>,
}

impl TrainingSetParams {
    fn selection(&self) -> Result<FeatureSelection> {
        match (&self.service, &self.features) {
            (Some(s), None) => Ok(FeatureSelection::service(s.clone())),
            (None, Some(f)) => FeatureSelection::features(f),
            _ => Err(Error::invalid(
                "training_set",
                "give exactly one of service or features",
            )),
        }
    }

    fn parse(params: &serde_json::Value) -> Result<Self> {
        let p: Self = parse_params("training_set", params)?;
        p.selection()?;
        Ok(p)
    }

    fn feature_store(&self, store: Arc<dyn Store>) -> FeatureStore {
        let root = self.root.clone().unwrap_or_else(|| PathBuf::from("."));
        FeatureStore::new(store.clone(), Arc::new(StoreSources::new(store, root)))
    }

    async fn project(&self, features: &FeatureStore) -> Result<String> {
        match (&self.project, &self.service) {
            (Some(p), _) => Ok(p.clone()),
            (None, Some(s)) => service_project(features.registry(), None, s).await,
            (None, None) => Err(Error::invalid(
                "training_set",
                "project is required with features",
            )),
        }
    }
}

/// `training_set`: the point-in-time-correct training set of the `entities` input (a dataset
/// of join keys, an `event_timestamp` and labels) with a feature service's (or references')
/// features, written as the next version of `dataset` with its lineage (registry version,
/// each source's version) and the entity dataset's other metadata (`sensitive`, …). Its output is a `dataset`, which `train` reads as `data` — and
/// trains on the feature columns only, unless its configuration names others.
///
/// Cached: the step re-runs when the entity rows change (its input), and a cached result is
/// used only while the project's definitions are still the registry version it was built from
/// and every source still reads as it did.
#[derive(Debug)]
pub struct TrainingSetStep(pub(crate) Arc<StepEnv>);

#[async_trait]
impl Step for TrainingSetStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let params = TrainingSetParams::parse(&ctx.params)?;
        let entities: DatasetRef = ctx.input("entities")?.get()?;
        let store = self.0.store.clone();
        let datasets = Datasets::new(store.clone());
        let features = params.feature_store(store);
        let project = params.project(&features).await?;
        let (entity_version, rows) = datasets
            .read_all(&entities.name, RefVersion::Exact(entities.version))
            .await?;
        let options = HistoricalOptions::default()
            .with_full_feature_names(params.full_feature_names)
            .with_filter_by_created_timestamp(params.filter_by_created_timestamp);
        let set = features
            .get_historical_features(&project, &rows, &params.selection()?, options)
            .await?;
        // The entity rows' metadata (`sensitive`, `license`, …) carries over; lineage is new.
        let mut options = WriteOptions::default().with_message(format!(
            "training set of {project} for {}@{} ({}.{})",
            entities.name, entities.version, ctx.pipeline, ctx.step
        ));
        for (k, v) in &entity_version.manifest.metadata {
            if !k.starts_with("features.") {
                options = options.with_metadata(k.clone(), v.clone());
            }
        }
        let v = write_training_set(&datasets, &params.dataset, &set, options).await?;
        DatasetRef::of(&v).into_outputs()
    }

    async fn outputs_exist(&self, ctx: &StepContext, outputs: &Outputs) -> Result<bool> {
        let Some(Ok(recorded)) = outputs.get("dataset").map(|o| o.get::<DatasetRef>()) else {
            return Ok(false);
        };
        let params: TrainingSetParams = ctx.params_as()?;
        let datasets = Datasets::new(self.0.store.clone());
        let version = match datasets
            .version(&recorded.name, RefVersion::Exact(recorded.version))
            .await
        {
            Ok(v) if v.digest == recorded.digest => v,
            Ok(_) => return Ok(false),
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        let Some(Ok(lineage)) = version
            .manifest
            .metadata
            .get("features.lineage")
            .map(|l| serde_json::from_str::<TrainingSetLineage>(l))
        else {
            return Ok(false);
        };
        let features = params.feature_store(self.0.store.clone());
        let applied = match features
            .registry()
            .get(&lineage.project, RefVersion::Latest)
            .await
        {
            Ok(a) => a,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        if applied.version != lineage.registry_version || applied.digest != lineage.registry_digest
        {
            return Ok(false);
        }
        for recorded in &lineage.sources {
            let Some(source) = applied.repo.source(&recorded.source) else {
                return Ok(false);
            };
            match features.reader().current(source).await {
                Ok(now) if now == *recorded => {}
                Ok(_) => return Ok(false),
                Err(e) if e.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn check(&self, params: &serde_json::Value) -> Result<()> {
        TrainingSetParams::parse(params).map(|_| ())
    }
}
