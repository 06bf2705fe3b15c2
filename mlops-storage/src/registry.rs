//! [`StoreRegistry`]: a durable [`Registry`] on any [`Store`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use mlops_core::page::Page;
use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, RegisteredModel, Registry,
    RegistryObject, SearchRegistryOptions, Stage,
};
use mlops_core::store::{CommitOptions, RefVersion, Store, StoreExt};
use mlops_core::tracking::Tag;
use mlops_core::{Alias, Error, ModelName, RefName, Result, TagKey, Version};
use serde::{Deserialize, Serialize};

use crate::registry_state::{ModelState, search_models, search_versions, split_target};

/// Where model documents live: `registry/models/<name>`.
const PREFIX: &str = "registry/models";
/// The document format this crate writes and reads.
const FORMAT: &str = "mlops.registered-model/1";
/// Attempts of one read-modify-commit before giving up to contention.
const ATTEMPTS: u32 = 200;

/// One version of a model's document; `state: None` records a deletion.
#[derive(Debug, Serialize, Deserialize)]
struct Doc {
    format: String,
    state: Option<ModelState>,
}

/// A [`Registry`] on any [`Store`] — a local directory, S3, memory — with the semantics of
/// [`MemoryRegistry`](crate::MemoryRegistry) (both apply the same state transitions).
///
/// Each registered model is one ref, `registry/models/<name>`, whose every version is the model's
/// whole state (versions, aliases, stages, tags, lineage, signatures) as a JSON blob. A change is
/// read → modify → commit with the version read as parent; a concurrent change makes the commit
/// fail with `Conflict`, and the change is re-applied to the newer state (with jittered backoff).
/// So version numbers are monotonic without gaps across any number of processes, and the ref's
/// history is an audit trail of every registry change.
#[derive(Debug, Clone)]
pub struct StoreRegistry {
    store: Arc<dyn Store>,
}

fn ref_name(name: &ModelName) -> Result<RefName> {
    RefName::new(format!("{PREFIX}/{name}"))
}

async fn backoff(attempt: u32) {
    let cap_ms = 1u64 << attempt.min(6);
    let jitter = mlops_core::id::random_uuid().as_u128() as u64 % (cap_ms + 1);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

impl StoreRegistry {
    /// A registry kept in `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// The latest document version and state; `None` when the model never existed.
    async fn load(&self, name: &ModelName) -> Result<Option<(Version, Option<ModelState>)>> {
        let commit = match self
            .store
            .get_ref(&ref_name(name)?, RefVersion::Latest)
            .await
        {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let raw = self.store.get_bytes(&commit.target).await?;
        let doc: Doc = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt("registered model", name, "unreadable document").with_source(e)
        })?;
        if doc.format != FORMAT {
            return Err(Error::not_supported(
                "registered model document format",
                format!("{:?}", doc.format),
                format!("this version reads {FORMAT}"),
            ));
        }
        Ok(Some((commit.version, doc.state)))
    }

    async fn read(&self, name: &ModelName) -> Result<ModelState> {
        self.load(name)
            .await?
            .and_then(|(_, s)| s)
            .ok_or_else(|| Error::not_found("registered model", name))
    }

    /// Applies `change` to the model's latest state and commits the result, retrying on
    /// concurrent changes. `change` may run several times and must depend only on its input.
    async fn update<T: Send>(
        &self,
        name: &ModelName,
        what: &str,
        change: impl Fn(&mut Option<ModelState>) -> Result<T> + Send + Sync,
    ) -> Result<T> {
        let refname = ref_name(name)?;
        for attempt in 0..ATTEMPTS {
            let (parent, mut state) = match self.load(name).await? {
                Some((v, s)) => (Some(v), s),
                None => (None, None),
            };
            let out = change(&mut state)?;
            let doc = Doc {
                format: FORMAT.to_owned(),
                state,
            };
            let json = serde_json::to_vec(&doc).map_err(|e| Error::backend("serde_json", e))?;
            let digest = self.store.put_bytes(Bytes::from(json)).await?.digest;
            let options = CommitOptions::default()
                .with_parent(parent)
                .with_message(what);
            match self.store.commit(&refname, digest, options).await {
                Ok(_) => return Ok(out),
                Err(e) if e.is_conflict() => backoff(attempt).await,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(
            "registered model",
            name,
            format!("{what}: gave up after {ATTEMPTS} concurrent changes got there first"),
        ))
    }

    /// Like [`update`](Self::update) for a model that must exist.
    async fn update_model<T: Send>(
        &self,
        name: &ModelName,
        what: &str,
        change: impl Fn(&mut ModelState) -> Result<T> + Send + Sync,
    ) -> Result<T> {
        self.update(name, what, |state| match state {
            Some(s) => change(s),
            None => Err(Error::not_found("registered model", name)),
        })
        .await
    }

    /// For `verify`: every model ref's name and its state, or the error reading it, so one
    /// damaged model does not hide the others.
    pub(crate) async fn each_model(&self) -> Result<Vec<(String, Result<Option<ModelState>>)>> {
        let prefix = RefName::new(PREFIX)?;
        let mut out = Vec::new();
        for r in self.store.list_refs(Some(&prefix)).await? {
            let shown = r.as_str().to_owned();
            let Some(name) = r
                .as_str()
                .strip_prefix(PREFIX)
                .map(|n| n.trim_start_matches('/'))
            else {
                continue;
            };
            let state = match ModelName::new(name) {
                Ok(name) => self.load(&name).await.map(|l| l.and_then(|(_, s)| s)),
                Err(e) => Err(e),
            };
            out.push((shown, state));
        }
        Ok(out)
    }

    /// Every live model's state.
    async fn all(&self) -> Result<Vec<ModelState>> {
        let prefix = RefName::new(PREFIX)?;
        let mut out = Vec::new();
        for r in self.store.list_refs(Some(&prefix)).await? {
            let Some(name) = r
                .as_str()
                .strip_prefix(PREFIX)
                .map(|n| n.trim_start_matches('/'))
            else {
                continue;
            };
            let Ok(name) = ModelName::new(name) else {
                continue;
            };
            match self.load(&name).await {
                Ok(Some((_, Some(state)))) => out.push(state),
                Ok(_) => {}
                // One damaged model does not hide the others; verify reports it.
                Err(e) if e.is_corrupt() => {
                    tracing::warn!(model = %name, error = %e, "skipped a damaged model; `mlops store verify` reports it");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Registry for StoreRegistry {
    async fn create_registered_model(
        &self,
        name: &ModelName,
        options: CreateModelOptions,
    ) -> Result<RegisteredModel> {
        self.update(name, "create model", |state| {
            if state.is_some() {
                return Err(Error::already_exists("registered model", name));
            }
            let created = ModelState::new(name, options.clone());
            let view = created.view();
            *state = Some(created);
            Ok(view)
        })
        .await
    }

    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
        Ok(self.read(name).await?.view())
    }

    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>> {
        search_models(&self.all().await?, &options)
    }

    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel> {
        self.update_model(name, "update model", |m| {
            Ok(m.update_description(description))
        })
        .await
    }

    async fn delete_registered_model(&self, name: &ModelName) -> Result<()> {
        self.update(name, "delete model", |state| match state.take() {
            Some(_) => Ok(()),
            None => Err(Error::not_found("registered model", name)),
        })
        .await
    }

    async fn create_model_version(
        &self,
        name: &ModelName,
        options: CreateVersionOptions,
    ) -> Result<ModelVersion> {
        self.update_model(name, "create version", |m| {
            m.create_version(options.clone())
        })
        .await
    }

    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion> {
        self.read(name).await?.get_version(version)
    }

    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>> {
        search_versions(&self.all().await?, &options)
    }

    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        self.update_model(name, "update version", |m| {
            m.update_version(version, description)
        })
        .await
    }

    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
        self.update_model(name, "delete version", |m| m.delete_version(version))
            .await
    }

    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        options: TransitionOptions,
    ) -> Result<ModelVersion> {
        let archive_existing = options.archive_existing;
        self.update_model(name, "transition stage", |m| {
            m.transition(version, stage, archive_existing)
        })
        .await
    }

    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()> {
        self.update_model(name, "set alias", |m| m.set_alias(alias, version))
            .await
    }

    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
        self.update_model(name, "delete alias", |m| m.delete_alias(alias))
            .await
    }

    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion> {
        self.read(name).await?.version_by_alias(alias)
    }

    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
        let (name, version) = split_target(target);
        self.update_model(name, "set tag", |m| m.set_tag(version, tag.clone()))
            .await
    }

    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
        let (name, version) = split_target(target);
        self.update_model(name, "delete tag", |m| m.delete_tag(version, key))
            .await
    }
}
