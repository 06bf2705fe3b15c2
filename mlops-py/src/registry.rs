//! [`Registry`]: registered models, versions, stages, aliases and tags, with MLflow's client
//! names (`create_model_version`, `set_registered_model_alias`, `get_model_version_by_alias`,
//! …) — optionally governed by a policy engine.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlops::registry::{
    CreateModelOptions, CreateVersionOptions, RegistryObject, SearchRegistryOptions,
    TransitionOptions,
};
use mlops::{Alias, ModelName, ModelUri, Registry as _, RegistryExt, Stage, Tag, Version};
use pyo3::prelude::*;

use crate::errors::OrPy;
use crate::runtime::block_on;
use crate::store::{Store, store_of, string_map, to_py};

/// A registered model's version: its number, stage, source, run, aliases, tags, lineage and
/// signature.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct ModelVersion {
    pub(crate) inner: mlops::ModelVersion,
}

#[pymethods]
impl ModelVersion {
    /// The registered model's name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.to_string()
    }

    /// The version number.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.version.get()
    }

    /// Its stage: `None`, `Staging`, `Production` or `Archived`.
    #[getter]
    fn current_stage(&self) -> &'static str {
        self.inner.current_stage.as_str()
    }

    /// Where the model's files are (`runs:/<id>/model`, a store reference, a path).
    #[getter]
    fn source(&self) -> String {
        self.inner.source.clone()
    }

    /// The run that produced it.
    #[getter]
    fn run_id(&self) -> Option<String> {
        self.inner.run_id.as_ref().map(ToString::to_string)
    }

    /// Description.
    #[getter]
    fn description(&self) -> String {
        self.inner.description.clone()
    }

    /// Aliases pointing at it.
    #[getter]
    fn aliases(&self) -> Vec<String> {
        self.inner.aliases.iter().map(ToString::to_string).collect()
    }

    /// Tags.
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.inner
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Registration status (`READY`, …).
    #[getter]
    fn status(&self) -> &'static str {
        match self.inner.status {
            mlops::registry::ModelVersionStatus::PendingRegistration => "PENDING_REGISTRATION",
            mlops::registry::ModelVersionStatus::FailedRegistration => "FAILED_REGISTRATION",
            _ => "READY",
        }
    }

    /// Creation time, ms since the epoch.
    #[getter]
    fn creation_timestamp(&self) -> i64 {
        self.inner.creation_timestamp
    }

    /// Last change, ms since the epoch.
    #[getter]
    fn last_updated_timestamp(&self) -> i64 {
        self.inner.last_updated_timestamp
    }

    /// Who registered it.
    #[getter]
    fn user_id(&self) -> Option<String> {
        self.inner.user_id.clone()
    }

    /// Run, dataset versions and git commit it came from, as a dict.
    #[getter]
    fn lineage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.lineage)
    }

    /// Its inputs and outputs (`{"inputs": [...], "outputs": [...]}`), when recorded.
    #[getter]
    fn signature<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner.signature)
    }

    /// `models:/<name>/<version>`.
    #[getter]
    fn uri(&self) -> String {
        self.inner.uri().to_string()
    }

    /// Everything as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!(
            "<ModelVersion: name={:?}, version={}, current_stage={:?}, aliases={:?}>",
            self.inner.name.as_str(),
            self.inner.version,
            self.inner.current_stage.as_str(),
            self.aliases()
        )
    }
}

/// A registered model: name, description, tags, aliases and the latest version per stage.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct RegisteredModel {
    inner: mlops::registry::RegisteredModel,
}

#[pymethods]
impl RegisteredModel {
    /// Its unique name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name.to_string()
    }

    /// Description.
    #[getter]
    fn description(&self) -> String {
        self.inner.description.clone()
    }

    /// Tags.
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.inner
            .tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Aliases and the version each points at.
    #[getter]
    fn aliases(&self) -> BTreeMap<String, u64> {
        self.inner
            .aliases
            .iter()
            .map(|(k, v)| (k.to_string(), v.get()))
            .collect()
    }

    /// The latest version in each stage.
    #[getter]
    fn latest_versions(&self) -> Vec<ModelVersion> {
        self.inner
            .latest_versions
            .iter()
            .cloned()
            .map(|inner| ModelVersion { inner })
            .collect()
    }

    /// Creation time, ms since the epoch.
    #[getter]
    fn creation_timestamp(&self) -> i64 {
        self.inner.creation_timestamp
    }

    /// Last change, ms since the epoch.
    #[getter]
    fn last_updated_timestamp(&self) -> i64 {
        self.inner.last_updated_timestamp
    }

    /// Everything as a dict.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        format!("<RegisteredModel: name={:?}>", self.inner.name.as_str())
    }
}

/// Registered models and their versions in a store, with MLflow's semantics. With a `policy`
/// (an `mlops.PolicyEngine`), every stage change, alias, tag and deletion is evaluated first
/// and a denial raises `PolicyDenied` naming the rules; with `decision_log`, every decision is
/// appended to the store's hash-chained log.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Registry {
    store: Py<Store>,
    pub(crate) inner: Arc<dyn mlops::Registry>,
    governed: bool,
}

fn model_name(py: Python<'_>, name: &str) -> PyResult<ModelName> {
    name.parse().or_py(py)
}

fn version(py: Python<'_>, v: u64) -> PyResult<Version> {
    Version::new(v).or_py(py)
}

fn tag(py: Python<'_>, key: &str, value: &Bound<'_, PyAny>) -> PyResult<Tag> {
    let value = crate::store::scalar_text("value", value)?;
    Tag::new(key.parse().or_py(py)?, value).or_py(py)
}

fn tags(py: Python<'_>, tags: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Tag>> {
    string_map("tags", tags)?
        .into_iter()
        .map(|(k, v)| Tag::new(k.parse().or_py(py)?, v).or_py(py))
        .collect()
}

fn search_options(filter_string: &str, order_by: Option<Vec<String>>) -> SearchRegistryOptions {
    let mut options = SearchRegistryOptions::default();
    if !filter_string.trim().is_empty() {
        options = options.with_filter(filter_string);
    }
    for o in order_by.unwrap_or_default() {
        options = options.order_by(o);
    }
    options
}

impl Registry {
    pub(crate) fn from_parts(
        store: Py<Store>,
        inner: Arc<dyn mlops::Registry>,
        governed: bool,
    ) -> Self {
        Self {
            store,
            inner,
            governed,
        }
    }

    /// The store it reads model files from.
    pub(crate) fn store_ref(&self) -> &Store {
        self.store.get()
    }

    fn registry(&self) -> Arc<dyn mlops::Registry> {
        Arc::clone(&self.inner)
    }
}

#[pymethods]
impl Registry {
    /// A registry over `store` (a URL or an `mlops.Store`), governed by `policy` when given,
    /// logging its decisions to the store's decision log when `decision_log` is true.
    #[new]
    #[pyo3(signature = (store, policy=None, decision_log=true))]
    fn new(
        py: Python<'_>,
        store: &Bound<'_, PyAny>,
        policy: Option<&Bound<'_, crate::policy::PolicyEngine>>,
        decision_log: bool,
    ) -> PyResult<Self> {
        let store = store_of(py, store)?;
        let backing = Arc::clone(&store.get().inner);
        let plain = mlops::storage::StoreRegistry::new(Arc::clone(&backing));
        let Some(policy) = policy else {
            return Ok(Self::from_parts(store, Arc::new(plain), false));
        };
        let engine = Arc::clone(&policy.get().inner);
        let governed = mlops::policy::Governed::new(plain, engine);
        let inner: Arc<dyn mlops::Registry> = if decision_log {
            let log = block_on(py, mlops::policy::DecisionLog::open_default(backing))?.or_py(py)?;
            Arc::new(governed.with_log(Arc::new(log)))
        } else {
            Arc::new(governed)
        };
        Ok(Self::from_parts(store, inner, true))
    }

    /// The store.
    #[getter]
    fn store(&self, py: Python<'_>) -> Py<Store> {
        self.store.clone_ref(py)
    }

    /// Whether a policy engine gates its changes.
    #[getter]
    fn governed(&self) -> bool {
        self.governed
    }

    /// Creates a registered model (`AlreadyExists` when the name is taken).
    #[pyo3(signature = (name, tags=None, description=""))]
    fn create_registered_model(
        &self,
        py: Python<'_>,
        name: &str,
        tags: Option<&Bound<'_, PyAny>>,
        description: &str,
    ) -> PyResult<RegisteredModel> {
        let name = model_name(py, name)?;
        let mut options = CreateModelOptions::default().with_description(description);
        for t in self::tags(py, tags)? {
            options = options.with_tag(t);
        }
        let r = self.registry();
        let inner = block_on(py, async move {
            r.create_registered_model(&name, options).await
        })?
        .or_py(py)?;
        Ok(RegisteredModel { inner })
    }

    /// A registered model.
    fn get_registered_model(&self, py: Python<'_>, name: &str) -> PyResult<RegisteredModel> {
        let name = model_name(py, name)?;
        let r = self.registry();
        let inner = block_on(py, async move { r.get_registered_model(&name).await })?.or_py(py)?;
        Ok(RegisteredModel { inner })
    }

    /// Registered models matching MLflow's filter (`name LIKE 'churn%'`, `tags.team = 'x'`).
    #[pyo3(signature = (filter_string="", order_by=None, max_results=1000))]
    fn search_registered_models(
        &self,
        py: Python<'_>,
        filter_string: &str,
        order_by: Option<Vec<String>>,
        max_results: usize,
    ) -> PyResult<Vec<RegisteredModel>> {
        let options = search_options(filter_string, order_by);
        let r = self.registry();
        let models = block_on(py, async move {
            collect_pages(max_results, options, |o| {
                let r = Arc::clone(&r);
                async move { r.search_registered_models(o).await }
            })
            .await
        })?
        .or_py(py)?;
        Ok(models
            .into_iter()
            .map(|inner| RegisteredModel { inner })
            .collect())
    }

    /// Replaces a registered model's description.
    fn update_registered_model(
        &self,
        py: Python<'_>,
        name: &str,
        description: String,
    ) -> PyResult<RegisteredModel> {
        let name = model_name(py, name)?;
        let r = self.registry();
        let inner = block_on(py, async move {
            r.update_registered_model(&name, &description).await
        })?
        .or_py(py)?;
        Ok(RegisteredModel { inner })
    }

    /// Deletes a registered model with its versions and aliases.
    fn delete_registered_model(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let name = model_name(py, name)?;
        let r = self.registry();
        block_on(py, async move { r.delete_registered_model(&name).await })?.or_py(py)
    }

    /// Registers a new version of `name` whose files are at `source` (a `runs:/<id>/<path>`
    /// URI, a store reference, a path).
    #[pyo3(signature = (name, source, run_id=None, tags=None, description=""))]
    fn create_model_version(
        &self,
        py: Python<'_>,
        name: &str,
        source: &str,
        run_id: Option<&str>,
        tags: Option<&Bound<'_, PyAny>>,
        description: &str,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let mut options = CreateVersionOptions::new(source).with_description(description);
        if let Some(id) = run_id {
            options = options.with_run_id(id.parse().or_py(py)?);
        } else if let Ok(ModelUri::Run { run_id, .. }) = source.parse::<ModelUri>() {
            options = options.with_run_id(run_id);
        }
        for t in self::tags(py, tags)? {
            options = options.with_tag(t);
        }
        let r = self.registry();
        let inner = block_on(
            py,
            async move { r.create_model_version(&name, options).await },
        )?
        .or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// MLflow's `register_model`: a new version of `name` from `model_uri`, creating the
    /// registered model when it does not exist yet. `runs:/<run id>/model` registers the model
    /// that run trained (read from `tracker`, else from this registry's store), so the version
    /// loads and serves.
    #[pyo3(signature = (model_uri, name, tags=None, tracker=None))]
    fn register_model(
        &self,
        py: Python<'_>,
        model_uri: &str,
        name: &str,
        tags: Option<&Bound<'_, PyAny>>,
        tracker: Option<&Bound<'_, crate::tracking::Tracker>>,
    ) -> PyResult<ModelVersion> {
        let model = model_name(py, name)?;
        let (source, run_id) = if model_uri.starts_with("runs:/") {
            let uri: ModelUri = model_uri.parse().or_py(py)?;
            let t: Arc<dyn mlops::Tracker> = match tracker {
                Some(t) => t.get().shared(py)?,
                None => {
                    let store = Arc::clone(&self.store.get().inner);
                    Arc::new(
                        block_on(
                            py,
                            mlops::storage::StoreTracker::open(
                                store,
                                mlops::storage::StoreTrackerOptions::default(),
                            ),
                        )?
                        .or_py(py)?,
                    )
                }
            };
            let (source, run_id) = block_on(py, async move {
                crate::model::run_model_source(t.as_ref(), &uri).await
            })?
            .or_py(py)?;
            (source, Some(run_id.to_string()))
        } else {
            (model_uri.to_owned(), None)
        };
        let r = self.registry();
        block_on(py, async move {
            match r.get_registered_model(&model).await {
                Ok(_) => Ok(()),
                Err(e) if e.kind() == mlops::ErrorKind::NotFound => r
                    .create_registered_model(&model, CreateModelOptions::default())
                    .await
                    .map(|_| ())
                    .or_else(|e| {
                        // Another writer created it meanwhile.
                        if e.kind() == mlops::ErrorKind::AlreadyExists {
                            Ok(())
                        } else {
                            Err(e)
                        }
                    }),
                Err(e) => Err(e),
            }
        })?
        .or_py(py)?;
        self.create_model_version(py, name, &source, run_id.as_deref(), tags, "")
    }

    /// A version.
    fn get_model_version(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let r = self.registry();
        let inner = block_on(py, async move { r.get_model_version(&name, v).await })?.or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// Versions matching MLflow's filter (`name = 'churn'`, `run_id = '…'`, `tags.k = 'v'`).
    #[pyo3(signature = (filter_string="", order_by=None, max_results=1000))]
    fn search_model_versions(
        &self,
        py: Python<'_>,
        filter_string: &str,
        order_by: Option<Vec<String>>,
        max_results: usize,
    ) -> PyResult<Vec<ModelVersion>> {
        let options = search_options(filter_string, order_by);
        let r = self.registry();
        let versions = block_on(py, async move {
            collect_pages(max_results, options, |o| {
                let r = Arc::clone(&r);
                async move { r.search_model_versions(o).await }
            })
            .await
        })?
        .or_py(py)?;
        Ok(versions
            .into_iter()
            .map(|inner| ModelVersion { inner })
            .collect())
    }

    /// Replaces a version's description.
    fn update_model_version(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        description: String,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let r = self.registry();
        let inner = block_on(py, async move {
            r.update_model_version(&name, v, &description).await
        })?
        .or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// Deletes a version (its aliases go with it; its number is never reused).
    fn delete_model_version(&self, py: Python<'_>, name: &str, version: u64) -> PyResult<()> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let r = self.registry();
        block_on(py, async move { r.delete_model_version(&name, v).await })?.or_py(py)
    }

    /// Moves a version to `stage` (`Staging`, `Production`, `Archived`, `None`); with
    /// `archive_existing_versions`, the others in that stage are archived.
    #[pyo3(signature = (name, version, stage, archive_existing_versions=false))]
    fn transition_model_version_stage(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        stage: &str,
        archive_existing_versions: bool,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let stage: Stage = stage.parse().or_py(py)?;
        let options = TransitionOptions::default().with_archive_existing(archive_existing_versions);
        let r = self.registry();
        let inner = block_on(py, async move {
            r.transition_stage(&name, v, stage, options).await
        })?
        .or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// Points `alias` at `version` (moving it from wherever it pointed).
    fn set_registered_model_alias(
        &self,
        py: Python<'_>,
        name: &str,
        alias: &str,
        version: u64,
    ) -> PyResult<()> {
        let name = model_name(py, name)?;
        let alias: Alias = alias.parse().or_py(py)?;
        let v = self::version(py, version)?;
        let r = self.registry();
        block_on(py, async move { r.set_alias(&name, &alias, v).await })?.or_py(py)
    }

    /// Removes an alias.
    fn delete_registered_model_alias(
        &self,
        py: Python<'_>,
        name: &str,
        alias: &str,
    ) -> PyResult<()> {
        let name = model_name(py, name)?;
        let alias: Alias = alias.parse().or_py(py)?;
        let r = self.registry();
        block_on(py, async move { r.delete_alias(&name, &alias).await })?.or_py(py)
    }

    /// The version an alias points at.
    fn get_model_version_by_alias(
        &self,
        py: Python<'_>,
        name: &str,
        alias: &str,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let alias: Alias = alias.parse().or_py(py)?;
        let r = self.registry();
        let inner = block_on(
            py,
            async move { r.get_version_by_alias(&name, &alias).await },
        )?
        .or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// Sets a tag on a registered model.
    fn set_registered_model_tag(
        &self,
        py: Python<'_>,
        name: &str,
        key: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let target = RegistryObject::Model(model_name(py, name)?);
        let tag = self::tag(py, key, value)?;
        let r = self.registry();
        block_on(py, async move { r.set_tag(&target, tag).await })?.or_py(py)
    }

    /// Removes a tag from a registered model.
    fn delete_registered_model_tag(&self, py: Python<'_>, name: &str, key: &str) -> PyResult<()> {
        let target = RegistryObject::Model(model_name(py, name)?);
        let key = key.parse().or_py(py)?;
        let r = self.registry();
        block_on(py, async move { r.delete_tag(&target, &key).await })?.or_py(py)
    }

    /// Sets a tag on a version.
    fn set_model_version_tag(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        key: &str,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let target = RegistryObject::Version(model_name(py, name)?, self::version(py, version)?);
        let tag = self::tag(py, key, value)?;
        let r = self.registry();
        block_on(py, async move { r.set_tag(&target, tag).await })?.or_py(py)
    }

    /// Removes a tag from a version.
    fn delete_model_version_tag(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        key: &str,
    ) -> PyResult<()> {
        let target = RegistryObject::Version(model_name(py, name)?, self::version(py, version)?);
        let key = key.parse().or_py(py)?;
        let r = self.registry();
        block_on(py, async move { r.delete_tag(&target, &key).await })?.or_py(py)
    }

    /// The version a `models:/` URI names: `models:/churn/3`, `models:/churn@champion`,
    /// `models:/churn/Production`, `models:/churn/latest`.
    fn resolve(&self, py: Python<'_>, model_uri: &str) -> PyResult<ModelVersion> {
        let uri: ModelUri = model_uri.parse().or_py(py)?;
        let r = self.registry();
        let inner = block_on(py, async move { r.resolve(&uri).await })?.or_py(py)?;
        Ok(ModelVersion { inner })
    }

    /// The highest-numbered version of `name`, among those in `stage` when given.
    #[pyo3(signature = (name, stage=None))]
    fn latest_version(
        &self,
        py: Python<'_>,
        name: &str,
        stage: Option<&str>,
    ) -> PyResult<ModelVersion> {
        let name = model_name(py, name)?;
        let stage = stage.map(str::parse::<Stage>).transpose().or_py(py)?;
        let r = self.registry();
        let inner = block_on(py, async move { r.latest_version(&name, stage).await })?.or_py(py)?;
        Ok(ModelVersion { inner })
    }

    fn __repr__(&self) -> String {
        format!(
            "mlops.Registry({:?}{})",
            self.store.get().url,
            if self.governed { ", governed" } else { "" }
        )
    }
}

/// Every item of a paged search, up to `max_results`.
async fn collect_pages<T, F, Fut>(
    max_results: usize,
    mut options: SearchRegistryOptions,
    page: F,
) -> mlops::Result<Vec<T>>
where
    F: Fn(SearchRegistryOptions) -> Fut,
    Fut: std::future::Future<Output = mlops::Result<mlops::Page<T>>>,
{
    let max_results = max_results.max(1);
    options.max_results = Some(max_results.min(1000));
    let mut out = Vec::new();
    loop {
        let p = page(options.clone()).await?;
        out.extend(p.items);
        match p.next_page_token {
            Some(token) if out.len() < max_results => options.page_token = Some(token),
            _ => break,
        }
    }
    out.truncate(max_results);
    Ok(out)
}

/// The git commit checked out where the process runs (what registries record in a version's
/// lineage), if it runs in a git checkout.
#[pyfunction]
pub(crate) fn current_git_commit() -> Option<String> {
    mlops::registry::Lineage::current_git_commit()
}
