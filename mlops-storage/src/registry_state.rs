//! One registered model's state and every registry mutation on it, shared by [`MemoryRegistry`]
//! (a map of these under a mutex) and [`StoreRegistry`] (one versioned document per model in a
//! store, updated by compare-and-swap) so both have exactly the same semantics.
//!
//! [`MemoryRegistry`]: crate::MemoryRegistry
//! [`StoreRegistry`]: crate::StoreRegistry

use std::collections::BTreeMap;

use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, ModelVersionStatus, RegisteredModel,
    RegistryObject, Stage,
};
use mlops_core::time::now_ms;
use mlops_core::tracking::Tag;
use mlops_core::{Alias, Error, ModelName, Result, TagKey, Version};
use serde::{Deserialize, Serialize};

/// Most results one registry search page may ask for (MLflow's limit for registered models).
pub(crate) const MAX_PAGE: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionState {
    pub(crate) version: ModelVersion,
    pub(crate) deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ModelState {
    /// `latest_versions` and `aliases` are derived on read, from `versions` and `aliases`.
    model: RegisteredModel,
    versions: BTreeMap<Version, VersionState>,
    aliases: BTreeMap<Alias, Version>,
    /// Highest number ever issued; numbers are never reused, even after deletes.
    last_version: Option<Version>,
}

impl ModelState {
    pub(crate) fn new(name: &ModelName, options: CreateModelOptions) -> Self {
        let now = now_ms();
        Self {
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
        }
    }

    fn missing(&self, version: Version) -> Error {
        Error::not_found("model version", format!("{}/{version}", self.model.name))
    }

    fn live(&self, version: Version) -> Result<&VersionState> {
        self.versions
            .get(&version)
            .filter(|v| !v.deleted)
            .ok_or_else(|| self.missing(version))
    }

    fn live_mut(&mut self, version: Version) -> Result<&mut VersionState> {
        let missing = self.missing(version);
        self.versions
            .get_mut(&version)
            .filter(|v| !v.deleted)
            .ok_or(missing)
    }

    fn touch(&mut self) {
        self.model.last_updated_timestamp = now_ms();
    }

    /// A version as readers see it, with the aliases that point at it.
    pub(crate) fn view_version(&self, v: &ModelVersion) -> ModelVersion {
        let mut out = v.clone();
        out.aliases = self
            .aliases
            .iter()
            .filter(|(_, n)| **n == v.version)
            .map(|(a, _)| a.clone())
            .collect();
        out
    }

    /// The model as readers see it, with the latest version per stage and its aliases.
    pub(crate) fn view(&self) -> RegisteredModel {
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

    /// What in this document contradicts itself: an alias pointing at a version that does not
    /// exist or was deleted, a version numbered above the highest ever issued.
    pub(crate) fn inconsistencies(&self) -> Vec<String> {
        let name = &self.model.name;
        let mut out = Vec::new();
        for (alias, v) in &self.aliases {
            match self.versions.get(v) {
                None => out.push(format!(
                    "alias {name}@{alias} points at version {v}, which does not exist"
                )),
                Some(s) if s.deleted => out.push(format!(
                    "alias {name}@{alias} points at version {v}, which was deleted"
                )),
                Some(_) => {}
            }
        }
        if let Some(top) = self.versions.keys().next_back()
            && self.last_version.is_none_or(|l| l < *top)
        {
            out.push(format!(
                "{name}: version {top} exists but the highest number issued is {}",
                self.last_version.map_or(0, |l| l.get())
            ));
        }
        out
    }

    /// Every live version as readers see it.
    pub(crate) fn live_versions(&self) -> impl Iterator<Item = ModelVersion> + '_ {
        self.versions
            .values()
            .filter(|v| !v.deleted)
            .map(|v| self.view_version(&v.version))
    }

    pub(crate) fn get_version(&self, version: Version) -> Result<ModelVersion> {
        Ok(self.view_version(&self.live(version)?.version))
    }

    pub(crate) fn update_description(&mut self, description: &str) -> RegisteredModel {
        self.model.description = description.to_owned();
        self.touch();
        self.view()
    }

    pub(crate) fn create_version(&mut self, options: CreateVersionOptions) -> Result<ModelVersion> {
        if options.source.trim().is_empty() {
            return Err(Error::invalid(
                "model version source",
                format!(
                    "a version of {} needs a non-empty source (where the model artifact is)",
                    self.model.name
                ),
            ));
        }
        let version = match self.last_version {
            Some(v) => v.next()?,
            None => Version::FIRST,
        };
        let now = now_ms();
        let mut lineage = options.lineage;
        if lineage.run_id.is_none() {
            lineage.run_id = options.run_id.clone();
        }
        if lineage.git_commit.is_none() {
            lineage.git_commit = mlops_core::registry::Lineage::current_git_commit();
        }
        let mv = ModelVersion {
            name: self.model.name.clone(),
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
        self.versions.insert(
            version,
            VersionState {
                version: mv.clone(),
                deleted: false,
            },
        );
        self.last_version = Some(version);
        self.touch();
        Ok(mv)
    }

    pub(crate) fn update_version(
        &mut self,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        let v = self.live_mut(version)?;
        v.version.description = description.to_owned();
        v.version.last_updated_timestamp = now_ms();
        let v = v.version.clone();
        Ok(self.view_version(&v))
    }

    pub(crate) fn delete_version(&mut self, version: Version) -> Result<()> {
        self.live_mut(version)?.deleted = true;
        self.aliases.retain(|_, v| *v != version);
        self.touch();
        Ok(())
    }

    pub(crate) fn transition(
        &mut self,
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
        self.live(version)?;
        let now = now_ms();
        for (n, v) in self.versions.iter_mut().filter(|(_, v)| !v.deleted) {
            if *n == version {
                v.version.current_stage = stage;
                v.version.last_updated_timestamp = now;
            } else if archive_existing && v.version.current_stage == stage {
                v.version.current_stage = Stage::Archived;
                v.version.last_updated_timestamp = now;
            }
        }
        self.touch();
        self.get_version(version)
    }

    pub(crate) fn set_alias(&mut self, alias: &Alias, version: Version) -> Result<()> {
        self.live(version)?;
        self.aliases.insert(alias.clone(), version);
        self.touch();
        Ok(())
    }

    pub(crate) fn delete_alias(&mut self, alias: &Alias) -> Result<()> {
        let name = &self.model.name;
        self.aliases
            .remove(alias)
            .ok_or_else(|| Error::not_found("alias", format!("{name}@{alias}")))?;
        self.touch();
        Ok(())
    }

    pub(crate) fn version_by_alias(&self, alias: &Alias) -> Result<ModelVersion> {
        let name = &self.model.name;
        let version = self
            .aliases
            .get(alias)
            .ok_or_else(|| Error::not_found("alias", format!("{name}@{alias}")))?;
        self.get_version(*version)
    }

    /// Sets a tag on the model (`None`) or one of its versions.
    pub(crate) fn set_tag(&mut self, version: Option<Version>, tag: Tag) -> Result<()> {
        match version {
            None => {
                self.model.tags.insert(tag.key, tag.value);
            }
            Some(v) => {
                let v = self.live_mut(v)?;
                v.version.tags.insert(tag.key, tag.value);
                v.version.last_updated_timestamp = now_ms();
            }
        }
        self.touch();
        Ok(())
    }

    /// Removes a tag from the model (`None`) or one of its versions.
    pub(crate) fn delete_tag(&mut self, version: Option<Version>, key: &TagKey) -> Result<()> {
        let missing = || Error::not_found("tag", key);
        match version {
            None => {
                self.model.tags.remove(key).ok_or_else(missing)?;
            }
            Some(v) => {
                self.live_mut(v)?
                    .version
                    .tags
                    .remove(key)
                    .ok_or_else(missing)?;
            }
        }
        self.touch();
        Ok(())
    }
}

/// `search_registered_models` over some model states, for every registry backend.
pub(crate) fn search_models<'a>(
    models: impl IntoIterator<Item = &'a ModelState>,
    options: &mlops_core::registry::SearchRegistryOptions,
) -> Result<mlops_core::page::Page<RegisteredModel>> {
    let max = page_size(options.max_results, 100)?;
    let views: Vec<RegisteredModel> = models.into_iter().map(ModelState::view).collect();
    mlops_core::search::select(
        mlops_core::search::SearchTarget::RegisteredModels,
        views,
        options.filter.as_deref(),
        &options.order_by,
        |a: &RegisteredModel, b: &RegisteredModel| a.name.cmp(&b.name),
        max,
        options.page_token.as_deref(),
    )
}

/// `search_model_versions` over some model states, for every registry backend.
pub(crate) fn search_versions<'a>(
    models: impl IntoIterator<Item = &'a ModelState>,
    options: &mlops_core::registry::SearchRegistryOptions,
) -> Result<mlops_core::page::Page<ModelVersion>> {
    let max = page_size(options.max_results, MAX_PAGE)?;
    let versions: Vec<ModelVersion> = models
        .into_iter()
        .flat_map(ModelState::live_versions)
        .collect();
    mlops_core::search::select(
        mlops_core::search::SearchTarget::ModelVersions,
        versions,
        options.filter.as_deref(),
        &options.order_by,
        |a: &ModelVersion, b: &ModelVersion| a.name.cmp(&b.name).then(b.version.cmp(&a.version)),
        max,
        options.page_token.as_deref(),
    )
}

/// The model a tag target names, and the version (`None` for the model itself).
pub(crate) fn split_target(target: &RegistryObject) -> (&ModelName, Option<Version>) {
    match target {
        RegistryObject::Model(name) => (name, None),
        RegistryObject::Version(name, v) => (name, Some(*v)),
    }
}

/// The page size asked for, checked against the limit.
pub(crate) fn page_size(max_results: Option<usize>, default: usize) -> Result<usize> {
    let n = max_results.unwrap_or(default);
    if n > MAX_PAGE {
        return Err(Error::invalid(
            "max_results",
            format!("{n} exceeds the limit of {MAX_PAGE}"),
        ));
    }
    Ok(n)
}
