//! [`MlflowRegistry`]: the core [`Registry`] over a real MLflow model registry's REST API 2.0.

use async_trait::async_trait;
use mlops_core::page::Page;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, RegisteredModel, Registry,
    RegistryObject, SearchRegistryOptions, Stage, TransitionOptions,
};
use mlops_core::tracking::Tag;
use mlops_core::{Alias, Error, ModelName, Result, TagKey, Version};
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::client::MlflowClient;
use crate::json::{JModelVersion, JRegisteredModel, LINEAGE_TAG, SIGNATURE_TAG};
use crate::tracker::{Empty, jtags, token};

/// A [`Registry`] that is a real MLflow model registry, over its REST API. Lineage and signature,
/// which MLflow has no fields for, travel as the version tags `mlops.lineage` and
/// `mlops.signature` (JSON), hidden from [`ModelVersion::tags`].
#[derive(Debug, Clone)]
pub struct MlflowRegistry {
    client: MlflowClient,
}

impl MlflowRegistry {
    /// A registry for the server at `tracking_uri` (see [`MlflowClient::new`]).
    pub fn new(tracking_uri: &str) -> Result<Self> {
        Ok(Self {
            client: MlflowClient::new(tracking_uri)?,
        })
    }
}

#[derive(Deserialize)]
struct ModelResponse {
    registered_model: JRegisteredModel,
}
#[derive(Deserialize)]
struct ModelsResponse {
    #[serde(default)]
    registered_models: Vec<JRegisteredModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}
#[derive(Deserialize)]
struct VersionResponse {
    model_version: JModelVersion,
}
#[derive(Deserialize)]
struct VersionsResponse {
    #[serde(default)]
    model_versions: Vec<JModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

fn version_name(name: &ModelName, v: Version) -> String {
    format!("{name}/{v}")
}

#[async_trait]
impl Registry for MlflowRegistry {
    async fn create_registered_model(
        &self,
        name: &ModelName,
        options: CreateModelOptions,
    ) -> Result<RegisteredModel> {
        let r: ModelResponse = self
            .client
            .call(
                Method::POST,
                "registered-models/create",
                &json!({"name": name.as_str(), "tags": jtags(&options.tags), "description": options.description}),
                "registered model",
                name.as_str(),
            )
            .await?;
        r.registered_model.into_core()
    }

    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
        let r: ModelResponse = self
            .client
            .call(
                Method::GET,
                "registered-models/get",
                &json!({"name": name.as_str()}),
                "registered model",
                name.as_str(),
            )
            .await?;
        r.registered_model.into_core()
    }

    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>> {
        let r: ModelsResponse = self
            .client
            .call(
                Method::GET,
                "registered-models/search",
                &json!({"filter": options.filter, "max_results": options.max_results.unwrap_or(100), "order_by": options.order_by, "page_token": options.page_token}),
                "registered model",
                "search",
            )
            .await?;
        Ok(Page {
            items: r
                .registered_models
                .into_iter()
                .map(JRegisteredModel::into_core)
                .collect::<Result<_>>()?,
            next_page_token: token(r.next_page_token),
        })
    }

    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel> {
        let r: ModelResponse = self
            .client
            .call(
                Method::PATCH,
                "registered-models/update",
                &json!({"name": name.as_str(), "description": description}),
                "registered model",
                name.as_str(),
            )
            .await?;
        r.registered_model.into_core()
    }

    async fn delete_registered_model(&self, name: &ModelName) -> Result<()> {
        let _: Empty = self
            .client
            .call(
                Method::DELETE,
                "registered-models/delete",
                &json!({"name": name.as_str()}),
                "registered model",
                name.as_str(),
            )
            .await?;
        Ok(())
    }

    async fn create_model_version(
        &self,
        name: &ModelName,
        options: CreateVersionOptions,
    ) -> Result<ModelVersion> {
        if options.source.trim().is_empty() {
            return Err(Error::invalid(
                "model version source",
                format!("a version of {name} needs a non-empty source"),
            ));
        }
        let mut version_tags = options.tags.clone();
        let mut lineage = options.lineage.clone();
        if lineage.run_id.is_none() {
            lineage.run_id.clone_from(&options.run_id);
        }
        if lineage.git_commit.is_none() {
            lineage.git_commit = mlops_core::registry::Lineage::current_git_commit();
        }
        if lineage != Default::default() {
            let json =
                serde_json::to_string(&lineage).map_err(|e| Error::backend("serde_json", e))?;
            version_tags.push(Tag::new(LINEAGE_TAG.parse()?, json)?);
        }
        if let Some(sig) = &options.signature {
            let json = serde_json::to_string(sig).map_err(|e| Error::backend("serde_json", e))?;
            version_tags.push(Tag::new(SIGNATURE_TAG.parse()?, json)?);
        }
        let r: VersionResponse = self
            .client
            .call(
                Method::POST,
                "model-versions/create",
                &json!({
                    "name": name.as_str(),
                    "source": options.source,
                    "run_id": options.run_id.as_ref().map(|r| r.as_str()),
                    "tags": jtags(&version_tags),
                    "run_link": options.run_link,
                    "description": options.description,
                }),
                "registered model",
                name.as_str(),
            )
            .await?;
        r.model_version.into_core()
    }

    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion> {
        let r: VersionResponse = self
            .client
            .call(
                Method::GET,
                "model-versions/get",
                &json!({"name": name.as_str(), "version": version.to_string()}),
                "model version",
                &version_name(name, version),
            )
            .await?;
        r.model_version.into_core()
    }

    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>> {
        let r: VersionsResponse = self
            .client
            .call(
                Method::GET,
                "model-versions/search",
                &json!({"filter": options.filter, "max_results": options.max_results.unwrap_or(1000), "order_by": options.order_by, "page_token": options.page_token}),
                "model version",
                "search",
            )
            .await?;
        Ok(Page {
            items: r
                .model_versions
                .into_iter()
                .map(JModelVersion::into_core)
                .collect::<Result<_>>()?,
            next_page_token: token(r.next_page_token),
        })
    }

    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        let r: VersionResponse = self
            .client
            .call(
                Method::PATCH,
                "model-versions/update",
                &json!({"name": name.as_str(), "version": version.to_string(), "description": description}),
                "model version",
                &version_name(name, version),
            )
            .await?;
        r.model_version.into_core()
    }

    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
        let _: Empty = self
            .client
            .call(
                Method::DELETE,
                "model-versions/delete",
                &json!({"name": name.as_str(), "version": version.to_string()}),
                "model version",
                &version_name(name, version),
            )
            .await?;
        Ok(())
    }

    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        options: TransitionOptions,
    ) -> Result<ModelVersion> {
        let archive_existing = options.archive_existing;
        if archive_existing && !matches!(stage, Stage::Staging | Stage::Production) {
            return Err(Error::invalid(
                "stage",
                format!(
                    "archive_existing only applies when moving to Staging or Production, not {stage}"
                ),
            ));
        }
        let r: VersionResponse = self
            .client
            .call(
                Method::POST,
                "model-versions/transition-stage",
                &json!({"name": name.as_str(), "version": version.to_string(), "stage": stage.as_str(), "archive_existing_versions": archive_existing}),
                "model version",
                &version_name(name, version),
            )
            .await?;
        r.model_version.into_core()
    }

    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()> {
        // MLflow answers a missing version with a generic error: check first, for a typed one.
        self.get_model_version(name, version).await?;
        let _: Empty = self
            .client
            .call(
                Method::POST,
                "registered-models/alias",
                &json!({"name": name.as_str(), "alias": alias.as_str(), "version": version.to_string()}),
                "model version",
                &version_name(name, version),
            )
            .await?;
        Ok(())
    }

    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
        // Deleting a missing alias succeeds on MLflow; the contract says NotFound.
        self.get_version_by_alias(name, alias).await?;
        let _: Empty = self
            .client
            .call(
                Method::DELETE,
                "registered-models/alias",
                &json!({"name": name.as_str(), "alias": alias.as_str()}),
                "alias",
                &format!("{name}@{alias}"),
            )
            .await?;
        Ok(())
    }

    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion> {
        // MLflow answers a missing alias with INVALID_PARAMETER_VALUE: check for a typed NotFound.
        if !self
            .get_registered_model(name)
            .await?
            .aliases
            .contains_key(alias)
        {
            return Err(Error::not_found("alias", format!("{name}@{alias}")));
        }
        let r: VersionResponse = self
            .client
            .call(
                Method::GET,
                "registered-models/alias",
                &json!({"name": name.as_str(), "alias": alias.as_str()}),
                "alias",
                &format!("{name}@{alias}"),
            )
            .await?;
        r.model_version.into_core()
    }

    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
        let (path, body, kind, shown) = match target {
            RegistryObject::Model(name) => (
                "registered-models/set-tag",
                json!({"name": name.as_str(), "key": tag.key.as_str(), "value": tag.value}),
                "registered model",
                name.to_string(),
            ),
            RegistryObject::Version(name, v) => (
                "model-versions/set-tag",
                json!({"name": name.as_str(), "version": v.to_string(), "key": tag.key.as_str(), "value": tag.value}),
                "model version",
                version_name(name, *v),
            ),
        };
        let _: Empty = self
            .client
            .call(Method::POST, path, &body, kind, &shown)
            .await?;
        Ok(())
    }

    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
        // MLflow deletes missing tags silently; the contract says NotFound.
        let present = match target {
            RegistryObject::Model(name) => self
                .get_registered_model(name)
                .await?
                .tags
                .contains_key(key.as_str()),
            RegistryObject::Version(name, v) => self
                .get_model_version(name, *v)
                .await?
                .tags
                .contains_key(key.as_str()),
        };
        if !present {
            return Err(Error::not_found("tag", key));
        }
        let (path, body, kind, shown) = match target {
            RegistryObject::Model(name) => (
                "registered-models/delete-tag",
                json!({"name": name.as_str(), "key": key.as_str()}),
                "registered model",
                name.to_string(),
            ),
            RegistryObject::Version(name, v) => (
                "model-versions/delete-tag",
                json!({"name": name.as_str(), "version": v.to_string(), "key": key.as_str()}),
                "model version",
                version_name(name, *v),
            ),
        };
        let _: Empty = self
            .client
            .call(Method::DELETE, path, &body, kind, &shown)
            .await?;
        Ok(())
    }
}
