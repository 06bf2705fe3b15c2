//! The model registry: [`Registry`] and its entities, mirroring MLflow's
//! (`model_registry.proto`, `mlflow/entities/model_registry/*`).

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::{Alias, DatasetName, Digest, ModelName, RunId, TagKey, Version};
use crate::page::Page;
use crate::signature::Signature;
use crate::tracking::Tag;
use crate::uri::ModelUri;

/// A model version's stage (deprecated in MLflow in favour of aliases, still widely used).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Stage {
    /// No stage (MLflow spells it `None`).
    #[default]
    None,
    /// Staging.
    Staging,
    /// Production.
    Production,
    /// Archived.
    Archived,
}

impl Stage {
    /// MLflow's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "None",
            Self::Staging => "Staging",
            Self::Production => "Production",
            Self::Archived => "Archived",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = Error;
    /// Case-insensitive, like MLflow's `get_canonical_stage`.
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "none" => Self::None,
            "staging" => Self::Staging,
            "production" => Self::Production,
            "archived" => Self::Archived,
            _ => {
                return Err(Error::invalid(
                    "stage",
                    format!("{s:?} is not one of None, Staging, Production, Archived"),
                ));
            }
        })
    }
}

/// A model version's registration status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelVersionStatus {
    /// Being registered.
    PendingRegistration,
    /// Registration failed.
    FailedRegistration,
    /// Ready to use.
    #[default]
    Ready,
}

/// A dataset version that fed a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetLineage {
    /// Dataset name.
    pub name: DatasetName,
    /// Dataset version.
    pub version: Version,
    /// Digest of the dataset version's manifest.
    pub digest: Digest,
}

/// Where a model version came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The run that produced it.
    pub run_id: Option<RunId>,
    /// The dataset versions it was trained on.
    pub datasets: Vec<DatasetLineage>,
    /// The code's git commit; registries fill it from the caller's git checkout when it is not
    /// given ([`Lineage::current_git_commit`]).
    pub git_commit: Option<String>,
}

impl Lineage {
    /// The commit checked out in the git repository containing the current directory, if any
    /// (read from `.git` directly: no `git` binary needed).
    pub fn current_git_commit() -> Option<String> {
        git_commit_at(&std::env::current_dir().ok()?)
    }
}

/// The commit checked out in the git repository containing `start`, if any.
pub fn git_commit_at(start: &std::path::Path) -> Option<String> {
    let mut dir = start.canonicalize().ok()?;
    loop {
        let git = dir.join(".git");
        if git.is_dir() {
            return read_head(&git);
        }
        if git.is_file() {
            // A worktree or submodule: `.git` names the real git directory.
            let text = std::fs::read_to_string(&git).ok()?;
            let target = text.trim().strip_prefix("gitdir:")?.trim();
            return read_head(&dir.join(target));
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn read_head(git: &std::path::Path) -> Option<String> {
    let valid = |h: &str| {
        let h = h.trim();
        (h.len() == 40 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_owned())
    };
    let head = std::fs::read_to_string(git.join("HEAD")).ok()?;
    let Some(reference) = head.trim().strip_prefix("ref: ") else {
        return valid(&head);
    };
    // Worktrees keep shared refs in the common directory.
    let common = std::fs::read_to_string(git.join("commondir"))
        .ok()
        .map(|c| git.join(c.trim()))
        .unwrap_or_else(|| git.to_path_buf());
    for dir in [git, common.as_path()] {
        if let Ok(h) = std::fs::read_to_string(dir.join(reference)) {
            return valid(&h);
        }
        if let Ok(packed) = std::fs::read_to_string(dir.join("packed-refs"))
            && let Some(h) = packed.lines().find_map(|l| {
                let (h, name) = l.split_once(' ')?;
                (name == reference).then_some(h)
            })
        {
            return valid(h);
        }
    }
    None
}

/// A registered model (MLflow's `RegisteredModel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegisteredModel {
    /// Its unique name.
    pub name: ModelName,
    /// Creation time, ms.
    pub creation_timestamp: i64,
    /// Last change, ms (bumped by tag and alias writes too).
    pub last_updated_timestamp: i64,
    /// Who created it.
    pub user_id: Option<String>,
    /// Description.
    pub description: String,
    /// The latest version in each stage.
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    pub tags: BTreeMap<TagKey, String>,
    /// Aliases and the versions they point at.
    pub aliases: BTreeMap<Alias, Version>,
}

/// A model version (MLflow's `ModelVersion`, plus lineage and signature).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// The registered model.
    pub name: ModelName,
    /// Its number: 1, 2, 3 … per model, never reused.
    pub version: Version,
    /// Creation time, ms.
    pub creation_timestamp: i64,
    /// Last change, ms.
    pub last_updated_timestamp: i64,
    /// Who created it.
    pub user_id: Option<String>,
    /// Its stage.
    pub current_stage: Stage,
    /// Description.
    pub description: String,
    /// Where the model artifact is (a `runs:/` URI, a store ref, a path or URL).
    pub source: String,
    /// The run that produced it.
    pub run_id: Option<RunId>,
    /// Registration status.
    pub status: ModelVersionStatus,
    /// Status detail.
    pub status_message: Option<String>,
    /// Tags.
    pub tags: BTreeMap<TagKey, String>,
    /// A link to the run in some UI.
    pub run_link: Option<String>,
    /// Aliases pointing at this version.
    pub aliases: Vec<Alias>,
    /// Run, dataset versions and code it came from.
    pub lineage: Lineage,
    /// What the model takes and returns.
    pub signature: Option<Signature>,
}

impl ModelVersion {
    /// `models:/<name>/<version>`.
    pub fn uri(&self) -> ModelUri {
        ModelUri::Version {
            name: self.name.clone(),
            version: self.version,
        }
    }
}

/// What a registry tag applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RegistryObject {
    /// A registered model.
    Model(ModelName),
    /// One version of it.
    Version(ModelName, Version),
}

/// Options for [`Registry::create_registered_model`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CreateModelOptions {
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Creator.
    pub user_id: Option<String>,
}

impl CreateModelOptions {
    /// Sets the description.
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }
}

/// Options for [`Registry::transition_stage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitionOptions {
    /// Archive the other versions in the target stage (MLflow's
    /// `archive_existing_versions`); only for `Staging` and `Production`.
    pub archive_existing: bool,
}

impl TransitionOptions {
    /// Sets whether the other versions in the target stage are archived.
    pub fn with_archive_existing(mut self, archive: bool) -> Self {
        self.archive_existing = archive;
        self
    }
}

/// Options for [`Registry::create_model_version`].
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CreateVersionOptions {
    /// Where the model artifact is (required, non-empty).
    pub source: String,
    /// The run that produced it (also recorded in the lineage).
    pub run_id: Option<RunId>,
    /// Description.
    pub description: String,
    /// Tags.
    pub tags: Vec<Tag>,
    /// Link to the run.
    pub run_link: Option<String>,
    /// Dataset versions and code.
    pub lineage: Lineage,
    /// Signature.
    pub signature: Option<Signature>,
    /// Creator.
    pub user_id: Option<String>,
}

impl CreateVersionOptions {
    /// A version whose artifact is at `source`.
    pub fn new(source: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            ..Self::default()
        }
    }

    /// Produced by `run_id`.
    pub fn with_run_id(mut self, run_id: RunId) -> Self {
        self.run_id = Some(run_id);
        self
    }

    /// Sets the lineage.
    pub fn with_lineage(mut self, lineage: Lineage) -> Self {
        self.lineage = lineage;
        self
    }

    /// Sets the signature.
    pub fn with_signature(mut self, signature: Signature) -> Self {
        self.signature = Some(signature);
        self
    }

    /// Sets the description.
    pub fn with_description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: Tag) -> Self {
        self.tags.push(tag);
        self
    }
}

/// Options for searching registered models or model versions.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct SearchRegistryOptions {
    /// A filter: for models `name` and tags; for versions `name`, `run_id`, `source_path`,
    /// `version_number` and tags.
    pub filter: Option<String>,
    /// `order_by` items; models default to `name`, versions to `name`, then `version_number DESC`.
    pub order_by: Vec<String>,
    /// Page size (default 100).
    pub max_results: Option<usize>,
    /// Token from the previous page.
    pub page_token: Option<String>,
}

impl SearchRegistryOptions {
    /// Sets the filter.
    pub fn with_filter(mut self, filter: impl Into<String>) -> Self {
        self.filter = Some(filter.into());
        self
    }

    /// Adds an `order_by` item.
    pub fn order_by(mut self, item: impl Into<String>) -> Self {
        self.order_by.push(item.into());
        self
    }

    /// Sets the page size.
    pub fn with_max_results(mut self, n: usize) -> Self {
        self.max_results = Some(n);
        self
    }

    /// Continues from a page token.
    pub fn with_page_token(mut self, token: Option<String>) -> Self {
        self.page_token = token;
        self
    }
}

/// A model registry with MLflow's semantics.
///
/// # Contract
///
/// - **Models.** Names are unique ([`Error::AlreadyExists`]). Deleting a model deletes its versions
///   and aliases.
/// - **Versions** are numbered 1, 2, 3 … per model with no gaps or duplicates, even with many
///   concurrent creators; numbers are never reused, even after deletion. A new version starts in
///   stage `None` with status `READY`. Creating a version of a missing model is
///   [`Error::NotFound`]; an empty `source` is [`Error::InvalidArgument`].
/// - **Deleting a version** is soft: it disappears from reads and searches, and its aliases are
///   removed.
/// - **Aliases** point at one existing version each; setting an alias moves it (from whatever
///   version had it). An alias to a missing version is [`Error::NotFound`]. Alias and tag writes
///   bump the model's `last_updated_timestamp`.
/// - **Stages.** Moving a version to `Staging` or `Production` with `archive_existing` archives
///   the other versions in that stage.
/// - **Lineage and signature** are stored with the version and returned unchanged.
/// - **Unknown names or versions** are [`Error::NotFound`] with kind `"registered model"`,
///   `"model version"` or `"alias"`.
///
/// # Implementing
///
/// Implement the required methods; conveniences come from [`RegistryExt`]. Run
/// `mlops_testkit::registry::run_all`.
#[async_trait]
pub trait Registry: Debug + Send + Sync + 'static {
    /// Creates a registered model.
    async fn create_registered_model(
        &self,
        name: &ModelName,
        options: CreateModelOptions,
    ) -> Result<RegisteredModel>;

    /// Reads a registered model.
    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel>;

    /// Searches registered models.
    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>>;

    /// Replaces a registered model's description.
    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel>;

    /// Deletes a registered model with its versions and aliases.
    async fn delete_registered_model(&self, name: &ModelName) -> Result<()>;

    /// Registers a new version.
    async fn create_model_version(
        &self,
        name: &ModelName,
        options: CreateVersionOptions,
    ) -> Result<ModelVersion>;

    /// Reads a version.
    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion>;

    /// Searches versions across models.
    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>>;

    /// Replaces a version's description.
    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion>;

    /// Soft-deletes a version and removes its aliases.
    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()>;

    /// Moves a version to `stage`; with [`TransitionOptions::archive_existing`], archives the
    /// others in that stage.
    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        options: TransitionOptions,
    ) -> Result<ModelVersion>;

    /// Points `alias` at `version` (moving it if it pointed elsewhere).
    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()>;

    /// Removes an alias; [`Error::NotFound`] when absent.
    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()>;

    /// The version an alias points at.
    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion>;

    /// Sets a tag on a model or a version.
    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()>;

    /// Removes a tag from a model or a version; [`Error::NotFound`] when absent.
    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()>;
}

/// Conveniences over [`Registry`], for every implementation.
#[async_trait]
pub trait RegistryExt: Registry {
    /// Resolves a `models:/` URI to a version. `runs:/` URIs name run artifacts, not registry
    /// entries, and are [`Error::InvalidArgument`] here.
    async fn resolve(&self, uri: &ModelUri) -> Result<ModelVersion> {
        match uri {
            ModelUri::Version { name, version } => self.get_model_version(name, *version).await,
            ModelUri::Alias { name, alias } => self.get_version_by_alias(name, alias).await,
            ModelUri::Latest { name } => self.latest_version(name, None).await,
            ModelUri::Stage { name, stage } => self.latest_version(name, Some(*stage)).await,
            ModelUri::Run { .. } => Err(Error::invalid(
                "model uri",
                format!("{uri} names a run artifact; resolve it with a Tracker, not a Registry"),
            )),
        }
    }

    /// The highest-numbered live version, optionally only among those in `stage`.
    async fn latest_version(&self, name: &ModelName, stage: Option<Stage>) -> Result<ModelVersion> {
        // Fails with NotFound for a missing model before we search.
        self.get_registered_model(name).await?;
        let filter = format!("name = '{}'", name.as_str().replace('\'', "''"));
        let mut best: Option<ModelVersion> = None;
        let mut options = SearchRegistryOptions::default().with_filter(filter);
        loop {
            let page = self.search_model_versions(options.clone()).await?;
            for v in page.items {
                if v.name == *name
                    && stage.is_none_or(|s| s == v.current_stage)
                    && best.as_ref().is_none_or(|b| v.version > b.version)
                {
                    best = Some(v);
                }
            }
            match page.next_page_token {
                Some(t) => options.page_token = Some(t),
                None => break,
            }
        }
        best.ok_or_else(|| match stage {
            Some(s) => Error::not_found("model version", format!("{name} in stage {s}")),
            None => Error::not_found("model version", format!("{name} (no versions)")),
        })
    }

    /// Every version of one model, ascending.
    async fn list_versions(&self, name: &ModelName) -> Result<Vec<ModelVersion>> {
        self.get_registered_model(name).await?;
        let filter = format!("name = '{}'", name.as_str().replace('\'', "''"));
        let mut out = Vec::new();
        let mut options = SearchRegistryOptions::default().with_filter(filter);
        loop {
            let page = self.search_model_versions(options.clone()).await?;
            out.extend(page.items.into_iter().filter(|v| v.name == *name));
            match page.next_page_token {
                Some(t) => options.page_token = Some(t),
                None => break,
            }
        }
        out.sort_by_key(|v| v.version);
        Ok(out)
    }
}

impl<R: Registry + ?Sized> RegistryExt for R {}

macro_rules! forward_registry {
    ($ty:ty) => {
        #[async_trait]
        #[deny(clippy::missing_trait_methods)]
        impl<R: Registry + ?Sized> Registry for $ty {
            async fn create_registered_model(
                &self,
                name: &ModelName,
                options: CreateModelOptions,
            ) -> Result<RegisteredModel> {
                (**self).create_registered_model(name, options).await
            }
            async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
                (**self).get_registered_model(name).await
            }
            async fn search_registered_models(
                &self,
                options: SearchRegistryOptions,
            ) -> Result<Page<RegisteredModel>> {
                (**self).search_registered_models(options).await
            }
            async fn update_registered_model(
                &self,
                name: &ModelName,
                description: &str,
            ) -> Result<RegisteredModel> {
                (**self).update_registered_model(name, description).await
            }
            async fn delete_registered_model(&self, name: &ModelName) -> Result<()> {
                (**self).delete_registered_model(name).await
            }
            async fn create_model_version(
                &self,
                name: &ModelName,
                options: CreateVersionOptions,
            ) -> Result<ModelVersion> {
                (**self).create_model_version(name, options).await
            }
            async fn get_model_version(
                &self,
                name: &ModelName,
                version: Version,
            ) -> Result<ModelVersion> {
                (**self).get_model_version(name, version).await
            }
            async fn search_model_versions(
                &self,
                options: SearchRegistryOptions,
            ) -> Result<Page<ModelVersion>> {
                (**self).search_model_versions(options).await
            }
            async fn update_model_version(
                &self,
                name: &ModelName,
                version: Version,
                description: &str,
            ) -> Result<ModelVersion> {
                (**self)
                    .update_model_version(name, version, description)
                    .await
            }
            async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
                (**self).delete_model_version(name, version).await
            }
            async fn transition_stage(
                &self,
                name: &ModelName,
                version: Version,
                stage: Stage,
                options: TransitionOptions,
            ) -> Result<ModelVersion> {
                (**self)
                    .transition_stage(name, version, stage, options)
                    .await
            }
            async fn set_alias(
                &self,
                name: &ModelName,
                alias: &Alias,
                version: Version,
            ) -> Result<()> {
                (**self).set_alias(name, alias, version).await
            }
            async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
                (**self).delete_alias(name, alias).await
            }
            async fn get_version_by_alias(
                &self,
                name: &ModelName,
                alias: &Alias,
            ) -> Result<ModelVersion> {
                (**self).get_version_by_alias(name, alias).await
            }
            async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
                (**self).set_tag(target, tag).await
            }
            async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
                (**self).delete_tag(target, key).await
            }
        }
    };
}

forward_registry!(Arc<R>);
forward_registry!(Box<R>);

#[cfg(test)]
mod tests {
    use super::git_commit_at;

    #[test]
    fn reads_the_checked_out_commit_of_a_repository() {
        let dir =
            std::env::temp_dir().join(format!("mlops-git-{}", crate::id::random_uuid().simple()));
        let git = dir.join(".git");
        std::fs::create_dir_all(git.join("refs/heads")).unwrap();
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        let commit = "0123456789abcdef0123456789abcdef01234567";
        std::fs::write(git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        assert_eq!(
            git_commit_at(&dir.join("sub/deeper")),
            None,
            "an unborn branch has no commit"
        );
        std::fs::write(
            git.join("packed-refs"),
            format!("# pack-refs\n{commit} refs/heads/main\n"),
        )
        .unwrap();
        assert_eq!(
            git_commit_at(&dir.join("sub/deeper")).as_deref(),
            Some(commit)
        );
        std::fs::write(git.join("refs/heads/main"), format!("{commit}\n")).unwrap();
        assert_eq!(git_commit_at(&dir).as_deref(), Some(commit));
        std::fs::write(git.join("HEAD"), format!("{commit}\n")).unwrap();
        assert_eq!(
            git_commit_at(&dir).as_deref(),
            Some(commit),
            "a detached HEAD"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
