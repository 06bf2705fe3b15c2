use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use mlops_core::page::Page;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, ModelVersionStatus, RegisteredModel,
    Registry, RegistryObject, SearchRegistryOptions, Stage,
};
use mlops_core::search::{SearchTarget, select};
use mlops_core::time::now_ms;
use mlops_core::tracking::Tag;
use mlops_core::{Alias, Error, ModelName, Result, TagKey, Version};

use super::lock;

/// Most results one registry search page may ask for (MLflow's limit for registered models).
const MAX_PAGE: usize = 1000;

#[derive(Debug)]
struct VersionState {
    version: ModelVersion,
    deleted: bool,
}

#[derive(Debug)]
struct ModelState {
    /// `latest_versions` and `aliases` are derived on read, from `versions` and `aliases`.
    model: RegisteredModel,
    versions: BTreeMap<Version, VersionState>,
    aliases: BTreeMap<Alias, Version>,
    /// Highest number ever issued; numbers are never reused, even after deletes.
    last_version: Option<Version>,
}

impl ModelState {
    fn live(&self, version: Version) -> Result<&VersionState> {
        self.versions
            .get(&version)
            .filter(|v| !v.deleted)
            .ok_or_else(|| {
                Error::not_found("model version", format!("{}/{version}", self.model.name))
            })
    }

    fn live_mut(&mut self, version: Version) -> Result<&mut VersionState> {
        let name = self.model.name.clone();
        self.versions
            .get_mut(&version)
            .filter(|v| !v.deleted)
            .ok_or_else(|| Error::not_found("model version", format!("{name}/{version}")))
    }

    fn view_version(&self, v: &ModelVersion) -> ModelVersion {
        let mut out = v.clone();
        out.aliases = self
            .aliases
            .iter()
            .filter(|(_, n)| **n == v.version)
            .map(|(a, _)| a.clone())
            .collect();
        out
    }

    fn view(&self) -> RegisteredModel {
        let mut latest: BTreeMap<&'static str, &ModelVersion> = BTreeMap::new();
        for v in self.versions.values().filter(|v| !v.deleted) {
            let slot = latest
                .entry(v.version.current_stage.as_str())
                .or_insert(&v.version);
            if v.version.version > slot.version {
                *slot = &v.version;
            }
        }
        let mut model = self.model.clone();
        let mut latest: Vec<ModelVersion> =
            latest.into_values().map(|v| self.view_version(v)).collect();
        latest.sort_by_key(|v| v.version);
        model.latest_versions = latest;
        model.aliases = self.aliases.clone();
        model
    }

    fn touch(&mut self) {
        self.model.last_updated_timestamp = now_ms();
    }
}

/// A [`Registry`] in memory, with MLflow's semantics: the reference for durable registries.
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    models: Mutex<BTreeMap<ModelName, ModelState>>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }
}

fn model_mut<'a>(
    models: &'a mut BTreeMap<ModelName, ModelState>,
    name: &ModelName,
) -> Result<&'a mut ModelState> {
    models
        .get_mut(name)
        .ok_or_else(|| Error::not_found("registered model", name))
}

fn page_size(options: &SearchRegistryOptions, default: usize) -> Result<usize> {
    let n = options.max_results.unwrap_or(default);
    if n > MAX_PAGE {
        return Err(Error::invalid(
            "max_results",
            format!("{n} exceeds the limit of {MAX_PAGE}"),
        ));
    }
    Ok(n)
}

#[async_trait]
impl Registry for MemoryRegistry {
    async fn create_registered_model(
        &self,
        name: &ModelName,
        options: CreateModelOptions,
    ) -> Result<RegisteredModel> {
        let mut models = lock(&self.models);
        if models.contains_key(name) {
            return Err(Error::already_exists("registered model", name));
        }
        let now = now_ms();
        let state = ModelState {
            model: RegisteredModel {
                name: name.clone(),
                creation_timestamp: now,
                last_updated_timestamp: now,
                user_id: options.user_id,
                description: options.description,
                latest_versions: Vec::new(),
                tags: options.tags.into_iter().map(|t| (t.key, t.value)).collect(),
                aliases: BTreeMap::new(),
            },
            versions: BTreeMap::new(),
            aliases: BTreeMap::new(),
            last_version: None,
        };
        let view = state.view();
        models.insert(name.clone(), state);
        Ok(view)
    }

    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
        lock(&self.models)
            .get(name)
            .map(ModelState::view)
            .ok_or_else(|| Error::not_found("registered model", name))
    }

    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>> {
        let max = page_size(&options, 100)?;
        let candidates: Vec<RegisteredModel> =
            lock(&self.models).values().map(ModelState::view).collect();
        select(
            SearchTarget::RegisteredModels,
            candidates,
            options.filter.as_deref(),
            &options.order_by,
            |a: &RegisteredModel, b: &RegisteredModel| a.name.cmp(&b.name),
            max,
            options.page_token.as_deref(),
        )
    }

    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel> {
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        m.model.description = description.to_owned();
        m.touch();
        Ok(m.view())
    }

    async fn delete_registered_model(&self, name: &ModelName) -> Result<()> {
        lock(&self.models)
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::not_found("registered model", name))
    }

    async fn create_model_version(
        &self,
        name: &ModelName,
        options: CreateVersionOptions,
    ) -> Result<ModelVersion> {
        if options.source.trim().is_empty() {
            return Err(Error::invalid(
                "model version source",
                format!(
                    "a version of {name} needs a non-empty source (where the model artifact is)"
                ),
            ));
        }
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        let version = match m.last_version {
            Some(v) => v.next()?,
            None => Version::FIRST,
        };
        let now = now_ms();
        let mut lineage = options.lineage;
        if lineage.run_id.is_none() {
            lineage.run_id = options.run_id.clone();
        }
        let mv = ModelVersion {
            name: name.clone(),
            version,
            creation_timestamp: now,
            last_updated_timestamp: now,
            user_id: options.user_id,
            current_stage: Stage::None,
            description: options.description,
            source: options.source,
            run_id: options.run_id,
            status: ModelVersionStatus::Ready,
            status_message: None,
            tags: options.tags.into_iter().map(|t| (t.key, t.value)).collect(),
            run_link: options.run_link,
            aliases: Vec::new(),
            lineage,
            signature: options.signature,
        };
        m.versions.insert(
            version,
            VersionState {
                version: mv.clone(),
                deleted: false,
            },
        );
        m.last_version = Some(version);
        m.touch();
        Ok(mv)
    }

    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion> {
        let models = lock(&self.models);
        let m = models
            .get(name)
            .ok_or_else(|| Error::not_found("registered model", name))?;
        Ok(m.view_version(&m.live(version)?.version))
    }

    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>> {
        let max = page_size(&options, MAX_PAGE)?;
        let candidates: Vec<ModelVersion> = lock(&self.models)
            .values()
            .flat_map(|m| {
                m.versions
                    .values()
                    .filter(|v| !v.deleted)
                    .map(|v| m.view_version(&v.version))
            })
            .collect();
        select(
            SearchTarget::ModelVersions,
            candidates,
            options.filter.as_deref(),
            &options.order_by,
            |a: &ModelVersion, b: &ModelVersion| {
                a.name.cmp(&b.name).then(b.version.cmp(&a.version))
            },
            max,
            options.page_token.as_deref(),
        )
    }

    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        let v = m.live_mut(version)?;
        v.version.description = description.to_owned();
        v.version.last_updated_timestamp = now_ms();
        let v = v.version.clone();
        Ok(m.view_version(&v))
    }

    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        m.live_mut(version)?.deleted = true;
        m.aliases.retain(|_, v| *v != version);
        m.touch();
        Ok(())
    }

    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        archive_existing: bool,
    ) -> Result<ModelVersion> {
        if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
            return Err(Error::invalid(
                "stage",
                format!(
                    "archive_existing only applies when moving to Staging or Production, not {stage}"
                ),
            ));
        }
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        m.live(version)?;
        let now = now_ms();
        for (n, v) in m.versions.iter_mut().filter(|(_, v)| !v.deleted) {
            if *n == version {
                v.version.current_stage = stage;
                v.version.last_updated_timestamp = now;
            } else if archive_existing && v.version.current_stage == stage {
                v.version.current_stage = Stage::Archived;
                v.version.last_updated_timestamp = now;
            }
        }
        m.touch();
        let v = m.live(version)?.version.clone();
        Ok(m.view_version(&v))
    }

    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()> {
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        m.live(version)?;
        m.aliases.insert(alias.clone(), version);
        m.touch();
        Ok(())
    }

    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
        let mut models = lock(&self.models);
        let m = model_mut(&mut models, name)?;
        m.aliases
            .remove(alias)
            .ok_or_else(|| Error::not_found("alias", format!("{name}@{alias}")))?;
        m.touch();
        Ok(())
    }

    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion> {
        let models = lock(&self.models);
        let m = models
            .get(name)
            .ok_or_else(|| Error::not_found("registered model", name))?;
        let version = m
            .aliases
            .get(alias)
            .ok_or_else(|| Error::not_found("alias", format!("{name}@{alias}")))?;
        Ok(m.view_version(&m.live(*version)?.version))
    }

    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
        let mut models = lock(&self.models);
        match target {
            RegistryObject::Model(name) => {
                let m = model_mut(&mut models, name)?;
                m.model.tags.insert(tag.key, tag.value);
                m.touch();
            }
            RegistryObject::Version(name, version) => {
                let m = model_mut(&mut models, name)?;
                let v = m.live_mut(*version)?;
                v.version.tags.insert(tag.key, tag.value);
                v.version.last_updated_timestamp = now_ms();
                m.touch();
            }
        }
        Ok(())
    }

    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
        let mut models = lock(&self.models);
        let missing = || Error::not_found("tag", key);
        match target {
            RegistryObject::Model(name) => {
                let m = model_mut(&mut models, name)?;
                m.model.tags.remove(key).ok_or_else(missing)?;
                m.touch();
            }
            RegistryObject::Version(name, version) => {
                let m = model_mut(&mut models, name)?;
                m.live_mut(*version)?
                    .version
                    .tags
                    .remove(key)
                    .ok_or_else(missing)?;
                m.touch();
            }
        }
        Ok(())
    }
}
