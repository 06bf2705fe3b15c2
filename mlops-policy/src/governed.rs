//! [`Governed`]: a [`Registry`] decorator that asks a [`PolicyEngine`] before versions are
//! registered, aliases move or stages change.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use mlops_core::policy::{
    Decision, GOVERNANCE_PATH, GovernanceInput, GovernedAction, ModelFacts, PolicyEngine,
};
use mlops_core::registry::TransitionOptions;
use mlops_core::registry::{
    CreateModelOptions, CreateVersionOptions, ModelVersion, RegisteredModel, Registry,
    RegistryObject, SearchRegistryOptions, Stage,
};
use mlops_core::tracker::Tracker;
use mlops_core::{Alias, Error, ModelName, Page, Result, Tag, TagKey, Version};

use crate::log::DecisionLog;

/// Adds facts to a governance input before it is decided: metrics, drift state, dataset tags.
#[async_trait]
pub trait Facts: fmt::Debug + Send + Sync + 'static {
    /// Adds to `input` (usually `input.model.metrics` or a top-level key of `input.extra`).
    async fn add(&self, input: &mut GovernanceInput) -> Result<()>;
}

/// Fills `input.model.metrics` with the latest metrics of the version's training run (metrics
/// already present, from `metrics.*` version tags, win).
#[derive(Debug)]
pub struct RunMetrics<T> {
    tracker: T,
}

impl<T: Tracker> RunMetrics<T> {
    /// Reads run metrics from `tracker`.
    pub fn new(tracker: T) -> Self {
        Self { tracker }
    }
}

#[async_trait]
impl<T: Tracker> Facts for RunMetrics<T> {
    async fn add(&self, input: &mut GovernanceInput) -> Result<()> {
        let Some(run_id) = &input.model.lineage.run_id else {
            return Ok(());
        };
        let run_id = mlops_core::RunId::new(run_id.clone())?;
        let run = self.tracker.get_run(&run_id).await?;
        for (key, m) in run.data.metrics {
            input
                .model
                .metrics
                .entry(key.as_str().to_string())
                .or_insert(m.value);
        }
        Ok(())
    }
}

/// Top-level facts that another component updates as it learns them — the drift monitor sets
/// `drift`, a feedback job `accuracy` — and every later decision sees.
#[derive(Debug, Default)]
pub struct SharedFacts {
    facts: RwLock<serde_json::Map<String, serde_json::Value>>,
}

impl SharedFacts {
    /// No facts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `input.<key>` for later decisions.
    pub fn set(&self, key: impl Into<String>, value: serde_json::Value) {
        self.facts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.into(), value);
    }

    /// Removes `input.<key>`.
    pub fn remove(&self, key: &str) {
        self.facts
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }
}

#[async_trait]
impl Facts for SharedFacts {
    async fn add(&self, input: &mut GovernanceInput) -> Result<()> {
        let facts = self.facts.read().unwrap_or_else(PoisonError::into_inner);
        for (k, v) in facts.iter() {
            input.extra.insert(k.clone(), v.clone());
        }
        Ok(())
    }
}

/// A registry whose version registrations, alias moves and stage changes are decided by policy.
///
/// Each governed call builds a [`GovernanceInput`] (the action and [`ModelFacts`] of the
/// version), lets every [`Facts`] provider add to it, evaluates it at the decision path
/// (default [`GOVERNANCE_PATH`], the shipped library's aggregate), records the decision in the
/// [`DecisionLog`] when one is attached — flushed before the change is applied, so no change
/// happens without its audit entry — and answers [`Error::PolicyDenied`] with every reason when
/// denied. Reads and the other writes are forwarded unchanged.
pub struct Governed<R> {
    inner: R,
    engine: Arc<dyn PolicyEngine>,
    path: String,
    facts: Vec<Arc<dyn Facts>>,
    log: Option<Arc<DecisionLog>>,
}

impl<R: fmt::Debug> fmt::Debug for Governed<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Governed")
            .field("inner", &self.inner)
            .field("engine", &self.engine)
            .field("path", &self.path)
            .field("facts", &self.facts)
            .field("log", &self.log)
            .finish()
    }
}

impl<R: Registry> Governed<R> {
    /// Governs `inner` with `engine` at [`GOVERNANCE_PATH`].
    pub fn new(inner: R, engine: Arc<dyn PolicyEngine>) -> Self {
        Self {
            inner,
            engine,
            path: GOVERNANCE_PATH.to_string(),
            facts: Vec::new(),
            log: None,
        }
    }

    /// Decides at another path (a package with `allow`/`deny`, or a rule).
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Adds a facts provider.
    pub fn with_facts(mut self, facts: Arc<dyn Facts>) -> Self {
        self.facts.push(facts);
        self
    }

    /// Records every decision in `log`.
    pub fn with_log(mut self, log: Arc<DecisionLog>) -> Self {
        self.log = Some(log);
        self
    }

    /// The governed registry.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Decides `action` on `model` (logging the decision) without acting on it.
    pub async fn decide(&self, action: GovernedAction, model: ModelFacts) -> Result<Decision> {
        let mut input = GovernanceInput::new(action, model);
        for f in &self.facts {
            f.add(&mut input).await?;
        }
        let query = input.query(&self.path)?;
        let decision = self.engine.evaluate(&query)?;
        if let Some(log) = &self.log {
            log.record(&query, &decision)?;
            log.flush().await?;
        }
        Ok(decision)
    }

    /// Decides whether `version` may be deployed (to `target`, when named): the gate a server
    /// asks before loading a version.
    pub async fn check_deploy(
        &self,
        name: &ModelName,
        version: Version,
        target: Option<String>,
    ) -> Result<Decision> {
        let v = self.inner.get_model_version(name, version).await?;
        self.gate(
            GovernedAction::Deploy { target },
            ModelFacts::from_version(&v),
        )
        .await
    }

    async fn gate(&self, action: GovernedAction, model: ModelFacts) -> Result<Decision> {
        let decision = self.decide(action, model).await?;
        if decision.allowed {
            Ok(decision)
        } else {
            Err(Error::policy_denied(self.path.clone(), decision.reasons))
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<R: Registry> Registry for Governed<R> {
    async fn create_registered_model(
        &self,
        name: &ModelName,
        options: CreateModelOptions,
    ) -> Result<RegisteredModel> {
        self.inner.create_registered_model(name, options).await
    }

    async fn get_registered_model(&self, name: &ModelName) -> Result<RegisteredModel> {
        self.inner.get_registered_model(name).await
    }

    async fn search_registered_models(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<RegisteredModel>> {
        self.inner.search_registered_models(options).await
    }

    async fn update_registered_model(
        &self,
        name: &ModelName,
        description: &str,
    ) -> Result<RegisteredModel> {
        self.inner.update_registered_model(name, description).await
    }

    async fn delete_registered_model(&self, name: &ModelName) -> Result<()> {
        self.inner.delete_registered_model(name).await
    }

    async fn create_model_version(
        &self,
        name: &ModelName,
        mut options: CreateVersionOptions,
    ) -> Result<ModelVersion> {
        // Fill the git commit as the registry would (once: the registry then keeps it), so
        // policies decide on exactly what will be stored.
        if options.lineage.git_commit.is_none() {
            options.lineage.git_commit = mlops_core::registry::Lineage::current_git_commit();
        }
        let facts = ModelFacts::from_new(name, &options);
        self.gate(GovernedAction::CreateVersion, facts).await?;
        self.inner.create_model_version(name, options).await
    }

    async fn get_model_version(&self, name: &ModelName, version: Version) -> Result<ModelVersion> {
        self.inner.get_model_version(name, version).await
    }

    async fn search_model_versions(
        &self,
        options: SearchRegistryOptions,
    ) -> Result<Page<ModelVersion>> {
        self.inner.search_model_versions(options).await
    }

    async fn update_model_version(
        &self,
        name: &ModelName,
        version: Version,
        description: &str,
    ) -> Result<ModelVersion> {
        self.inner
            .update_model_version(name, version, description)
            .await
    }

    async fn delete_model_version(&self, name: &ModelName, version: Version) -> Result<()> {
        self.inner.delete_model_version(name, version).await
    }

    async fn transition_stage(
        &self,
        name: &ModelName,
        version: Version,
        stage: Stage,
        options: TransitionOptions,
    ) -> Result<ModelVersion> {
        let v = self.inner.get_model_version(name, version).await?;
        self.gate(
            GovernedAction::TransitionStage { stage },
            ModelFacts::from_version(&v),
        )
        .await?;
        self.inner
            .transition_stage(name, version, stage, options)
            .await
    }

    async fn set_alias(&self, name: &ModelName, alias: &Alias, version: Version) -> Result<()> {
        let v = self.inner.get_model_version(name, version).await?;
        self.gate(
            GovernedAction::SetAlias {
                alias: alias.clone(),
            },
            ModelFacts::from_version(&v),
        )
        .await?;
        self.inner.set_alias(name, alias, version).await
    }

    async fn delete_alias(&self, name: &ModelName, alias: &Alias) -> Result<()> {
        self.inner.delete_alias(name, alias).await
    }

    async fn get_version_by_alias(&self, name: &ModelName, alias: &Alias) -> Result<ModelVersion> {
        self.inner.get_version_by_alias(name, alias).await
    }

    async fn set_tag(&self, target: &RegistryObject, tag: Tag) -> Result<()> {
        self.inner.set_tag(target, tag).await
    }

    async fn delete_tag(&self, target: &RegistryObject, key: &TagKey) -> Result<()> {
        self.inner.delete_tag(target, key).await
    }
}
