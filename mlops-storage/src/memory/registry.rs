use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use mlops_core::page::Page;
use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, RegisteredModel, Registry,
    RegistryObject, SearchRegistryOptions, Stage,
};
use mlops_core::tracking::Tag;
use mlops_core::{Alias, Error, ModelName, Result, TagKey, Version};

use super::lock;
use crate::registry_state::{ModelState, search_models, search_versions, split_target};

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

    /// Runs `f` on one model's state under the lock.
    fn with_model<T>(
        &self,
        name: &ModelName,
        f: impl FnOnce(&mut ModelState) -> Result<T>,
    ) -> Result<T> {
        let mut models = lock(&self.models);
        let state = models
            .get_mut(name)
            .ok_or_else(|| Error::not_found("registered model", name))?;
        f(state)
    }
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
        let state = ModelState::new(name, options);
        let view = state.view();
        models.insert(name.clone(), state);
        Ok(view)
    }

    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
        self.with_model(name, |m| Ok(m.view()))
    }

    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>> {
        search_models(lock(&self.models).values(), &options)
    }

    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel> {
        self.with_model(name, |m| Ok(m.update_description(description)))
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
        self.with_model(name, |m| m.create_version(options))
    }

    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion> {
        self.with_model(name, |m| m.get_version(version))
    }

    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>> {
        search_versions(lock(&self.models).values(), &options)
    }

    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        self.with_model(name, |m| m.update_version(version, description))
    }

    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
        self.with_model(name, |m| m.delete_version(version))
    }

    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        options: TransitionOptions,
    ) -> Result<ModelVersion> {
        let archive_existing = options.archive_existing;
        self.with_model(name, |m| m.transition(version, stage, archive_existing))
    }

    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()> {
        self.with_model(name, |m| m.set_alias(alias, version))
    }

    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
        self.with_model(name, |m| m.delete_alias(alias))
    }

    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion> {
        self.with_model(name, |m| m.version_by_alias(alias))
    }

    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
        let (name, version) = split_target(target);
        self.with_model(name, |m| m.set_tag(version, tag))
    }

    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
        let (name, version) = split_target(target);
        self.with_model(name, |m| m.delete_tag(version, key))
    }
}
