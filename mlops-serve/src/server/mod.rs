//! [`ModelServer`]: the in-process [`Server`] — a repository of loaded model versions
//! (`loaded`), routing between them (`crate::routing`) with shadow traffic (`shadow`), fed by
//! instances, artifacts, model directories (`crate::model_dir`) or registry URIs.

mod loaded;
mod shadow;

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use mlops_core::drift::InferenceObserver;
use mlops_core::model::{ArtifactSource, Model, ModelArtifact, ModelLoader};
use mlops_core::policy::PolicyEngine;
use mlops_core::registry::{Registry, RegistryExt};
use mlops_core::serve::{
    InferRequest, InferResponse, LoadOptions, ModelMetadata, ModelState, Preprocessor, Server,
    ServerMetadata,
};
use mlops_core::{Error, ModelName, ModelUri, Result, Tensor, Version};

pub use loaded::LoadedModel;
pub use shadow::ShadowStats;

use crate::batch::{BatchConfig, Batcher};
use crate::metrics::{ServeMetrics, error_outcome};
use crate::model_dir::read_model_dir;
use crate::routing::Routing;
use shadow::Shadows;

#[derive(Debug, Default)]
struct Slot {
    versions: BTreeMap<Version, Arc<LoadedModel>>,
    /// The version served when a request names none and no routing is set: the last loaded.
    default: Option<Version>,
    /// Canary and shadow routing, when set.
    routing: Option<Routing>,
}

/// The routing key a request carries (`parameters.routing_key`; the HTTP transport copies
/// the `X-Routing-Key` header there).
pub const ROUTING_KEY: &str = "routing_key";

/// Marks a request as synthetic (`parameters["mlops.synthetic"] = true`): an explainer's
/// perturbed rows. The server answers it but does not show it to the inference observer
/// (drift windows), does not mirror it to a shadow and does not count it in the request
/// metrics. The HTTP transport strips the key from clients' requests; only in-process callers
/// set it.
pub const SYNTHETIC: &str = "mlops.synthetic";

fn synthetic(request: &InferRequest) -> bool {
    request
        .parameters
        .get(SYNTHETIC)
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
}

/// The in-process Open Inference Protocol server: a multi-model, multi-version repository.
///
/// - Models come in as instances ([`load_model`](Self::load_model)), as artifacts of a flavor
///   with a registered [`ModelLoader`] ([`load_artifact`](Self::load_artifact)), or by
///   `models:/` URI through a [`Registry`] and an [`ArtifactSource`] ([`Server::load`]).
/// - A version is ready only after a warm-up prediction on zero inputs succeeded; a failing
///   warm-up leaves whatever was served before in place.
/// - Loading a version that is already served swaps it atomically: requests in flight finish
///   on the version they started on, later ones see the new one, none fail.
/// - With a [`PolicyEngine`] configured, a version loaded by URI must pass the deploy gate
///   ([`mlops_core::policy::check_deploy`]) first.
/// - With an [`InferenceObserver`] configured, tabular inputs (1-D tensors of one length) of
///   every successful request are passed to it on a blocking-pool thread, off the request path
///   (drift monitoring).
pub struct ModelServer {
    name: String,
    batching: BatchConfig,
    metrics: ServeMetrics,
    loaders: BTreeMap<String, Arc<dyn ModelLoader>>,
    registry: Option<(Arc<dyn Registry>, Arc<dyn ArtifactSource>)>,
    gate: Option<(Arc<dyn PolicyEngine>, String)>,
    observer: Option<Arc<dyn InferenceObserver>>,
    preprocessors: BTreeMap<ModelName, Arc<dyn Preprocessor>>,
    models: RwLock<BTreeMap<ModelName, Slot>>,
    tickets: std::sync::atomic::AtomicU64,
    shadows: Shadows,
    /// Models being loaded that serve no version yet: requests get 503, not 404.
    loading: LoadingSet,
}

impl std::fmt::Debug for ModelServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelServer")
            .field("name", &self.name)
            .field("flavors", &self.loaders.keys().collect::<Vec<_>>())
            .field(
                "models",
                &self
                    .models
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .keys()
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`ModelServer`].
#[derive(Debug)]
pub struct ModelServerBuilder {
    server: ModelServer,
}

impl ModelServerBuilder {
    /// Adds a loader for its flavor.
    pub fn loader(mut self, loader: Arc<dyn ModelLoader>) -> Self {
        self.server
            .loaders
            .insert(loader.flavor().to_string(), loader);
        self
    }

    /// Resolves `models:/` URIs in `registry` and fetches their artifacts from `source`.
    pub fn registry(
        mut self,
        registry: Arc<dyn Registry>,
        source: Arc<dyn ArtifactSource>,
    ) -> Self {
        self.server.registry = Some((registry, source));
        self
    }

    /// Asks `engine` at `path` before deploying a version loaded by URI.
    pub fn policy(mut self, engine: Arc<dyn PolicyEngine>, path: impl Into<String>) -> Self {
        self.server.gate = Some((engine, path.into()));
        self
    }

    /// Batches every model that can be batched (all inputs with a variable first dimension)
    /// with `config`, unless loaded with its own.
    pub fn batching(mut self, config: BatchConfig) -> Self {
        self.server.batching = config;
        self
    }

    /// Passes served tabular inputs to `observer`.
    pub fn observer(mut self, observer: Arc<dyn InferenceObserver>) -> Self {
        self.server.observer = Some(observer);
        self
    }

    /// Runs `preprocessor` on every request to model `name` before the model sees it (see
    /// [`Preprocessor`]: e.g. a feature lookup by entity key). Explainers' synthetic requests
    /// skip it: they carry the model's own inputs.
    pub fn preprocessor(mut self, name: ModelName, preprocessor: Arc<dyn Preprocessor>) -> Self {
        self.server.preprocessors.insert(name, preprocessor);
        self
    }

    /// The server.
    pub fn build(self) -> ModelServer {
        self.server
    }
}

impl ModelServer {
    /// A builder; the server is called `name` in its metadata. The `identity` and `linear`
    /// flavors' loaders are registered.
    pub fn builder(name: impl Into<String>) -> ModelServerBuilder {
        let identity: Arc<dyn ModelLoader> = Arc::new(crate::identity::IdentityLoader);
        let linear: Arc<dyn ModelLoader> = Arc::new(crate::linear::LinearLoader);
        ModelServerBuilder {
            server: ModelServer {
                name: name.into(),
                batching: BatchConfig::default(),
                // Registering fixed, distinct names in a fresh registry cannot fail.
                metrics: ServeMetrics::new().unwrap_or_else(|e| unreachable_metrics(&e)),
                loaders: BTreeMap::from([
                    (identity.flavor().to_string(), identity),
                    (linear.flavor().to_string(), linear),
                ]),
                registry: None,
                gate: None,
                observer: None,
                preprocessors: BTreeMap::new(),
                models: RwLock::new(BTreeMap::new()),
                tickets: std::sync::atomic::AtomicU64::new(0),
                shadows: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
                loading: LoadingSet::default(),
            },
        }
    }

    /// The server's metrics (`/metrics`).
    pub fn metrics(&self) -> &ServeMetrics {
        &self.metrics
    }

    /// Prometheus text of the server's metrics, queue depths read now.
    pub fn render_metrics(&self) -> Result<String> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        for (name, slot) in models.iter() {
            let depth: usize = slot
                .versions
                .values()
                .filter_map(|v| v.batcher.as_ref().map(Batcher::depth))
                .sum();
            self.metrics
                .queue
                .with_label_values(&[name.as_str()])
                .set(i64::try_from(depth).unwrap_or(i64::MAX));
        }
        drop(models);
        self.metrics.render()
    }

    /// Serves `model` as `name` version `version` (warmed up first), batched with the server's
    /// default configuration when its inputs allow.
    pub fn load_model(
        &self,
        name: &ModelName,
        version: Version,
        model: Arc<dyn Model>,
    ) -> Result<()> {
        self.load_model_with(name, version, model, self.batching)
    }

    /// Like [`load_model`](Self::load_model) with this version's own batching.
    pub fn load_model_with(
        &self,
        name: &ModelName,
        version: Version,
        model: Arc<dyn Model>,
        batching: BatchConfig,
    ) -> Result<()> {
        let loaded = LoadedModel::warm_up(name, version, model, batching, &self.metrics)?;
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models.entry(name.clone()).or_default();
        slot.versions.insert(version, Arc::new(loaded));
        slot.default = Some(version);
        tracing::info!(model = %name, %version, "model loaded");
        Ok(())
    }

    /// Serves an artifact through the loader of its flavor.
    pub fn load_artifact(
        &self,
        name: &ModelName,
        version: Version,
        artifact: &ModelArtifact,
    ) -> Result<()> {
        let loader = self.loaders.get(&artifact.flavor).ok_or_else(|| {
            Error::not_supported(
                "flavor",
                format!("{:?}", artifact.flavor),
                format!(
                    "no loader for it (loaders: {})",
                    self.loaders.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })?;
        self.load_model(name, version, loader.load(artifact)?)
    }

    /// Routes requests for `name` that name no version: a primary, optionally a weighted
    /// canary and a shadow. Every version named must be loaded.
    pub fn set_routing(&self, name: &ModelName, routing: Routing) -> Result<()> {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models
            .get_mut(name)
            .ok_or_else(|| Error::not_found("model", name))?;
        let named = std::iter::once(routing.primary)
            .chain(routing.canary.as_ref().map(|c| c.version))
            .chain(routing.shadow);
        for v in named {
            if !slot.versions.contains_key(&v) {
                return Err(Error::not_found("model version", format!("{name} v{v}")));
            }
        }
        slot.routing = Some(routing);
        Ok(())
    }

    /// Removes routing: requests go to the last version loaded again.
    pub fn clear_routing(&self, name: &ModelName) -> Result<()> {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models
            .get_mut(name)
            .ok_or_else(|| Error::not_found("model", name))?;
        slot.routing = None;
        Ok(())
    }

    /// What shadow traffic of `name` has shown so far.
    pub fn shadow_stats(&self, name: &ModelName) -> ShadowStats {
        self.shadows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The version a request is served by and the shadow to mirror it to.
    fn route(
        &self,
        name: &ModelName,
        version: Option<Version>,
        key: Option<&str>,
    ) -> Result<(Arc<LoadedModel>, Option<Arc<LoadedModel>>)> {
        if version.is_some() {
            return Ok((self.resolve(name, version)?, None));
        }
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = models.get(name) else {
            drop(models);
            return Err(self.absent(name));
        };
        let Some(routing) = &slot.routing else {
            drop(models);
            return Ok((self.resolve(name, None)?, None));
        };
        let ticket = self
            .tickets
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let pick = routing.pick(key, ticket);
        let chosen = slot
            .versions
            .get(&pick)
            .cloned()
            .ok_or_else(|| Error::not_found("model version", format!("{name} v{pick}")))?;
        let shadow = routing.shadow.and_then(|v| slot.versions.get(&v).cloned());
        Ok((chosen, shadow))
    }

    /// The version a request for `name` (and optionally `version`) is served by.
    pub fn resolve(&self, name: &ModelName, version: Option<Version>) -> Result<Arc<LoadedModel>> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = models.get(name) else {
            drop(models);
            return Err(self.absent(name));
        };
        let v = match version {
            Some(v) => v,
            None => slot
                .default
                .ok_or_else(|| Error::not_found("model", name))?,
        };
        slot.versions
            .get(&v)
            .cloned()
            .ok_or_else(|| Error::not_found("model version", format!("{name} v{v}")))
    }

    /// The metric labels of a request that did not reach a version: only names and versions the
    /// server serves (or is loading) become labels; anything else is counted under `unknown`,
    /// so requests for made-up names cannot create series without end.
    fn labels(&self, name: &ModelName, version: Option<Version>) -> (String, String) {
        const UNKNOWN: &str = "unknown";
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let loading = self
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name);
        match models.get(name) {
            Some(slot) => {
                let version = match version {
                    None => String::new(),
                    Some(v) if slot.versions.contains_key(&v) => v.to_string(),
                    Some(_) => UNKNOWN.to_owned(),
                };
                (name.to_string(), version)
            }
            None if loading => (name.to_string(), String::new()),
            None => (UNKNOWN.to_owned(), String::new()),
        }
    }

    /// Why `name` cannot answer: still loading (503) or unknown (404).
    fn absent(&self, name: &ModelName) -> Error {
        if self
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
        {
            Error::unavailable(format!("model {name} is loading"))
        } else {
            Error::not_found("model", name)
        }
    }

    /// Serves the model in `dir` (a folder written by [`write_model_dir`](crate::write_model_dir), or any folder with
    /// a `FLAVOR` file naming its flavor beside the flavor's files).
    pub fn load_dir(
        &self,
        name: &ModelName,
        version: Version,
        dir: &std::path::Path,
    ) -> Result<()> {
        let artifact = read_model_dir(dir)?;
        self.load_artifact(name, version, &artifact)
    }

    fn observe(&self, loaded: &LoadedModel, inputs: &[&Tensor]) {
        let Some(observer) = &self.observer else {
            return;
        };
        let Some(first) = inputs.first() else { return };
        let rows = first.shape().first().copied().unwrap_or(0);
        let tabular = inputs
            .iter()
            .all(|t| t.shape().len() == 1 && t.shape()[0] == rows);
        if !tabular {
            return;
        }
        let mut fields = Vec::with_capacity(inputs.len());
        let mut arrays = Vec::with_capacity(inputs.len());
        for t in inputs {
            let Ok(array) = mlops_core::arrow::array_from_tensor(t) else {
                return;
            };
            fields.push(arrow_schema::Field::new(
                t.name(),
                array.data_type().clone(),
                true,
            ));
            arrays.push(array);
        }
        let schema = std::sync::Arc::new(arrow_schema::Schema::new(fields));
        if let Ok(batch) = arrow_array::RecordBatch::try_new(schema, arrays) {
            let version = Some(loaded.version());
            // Off the request path: a monitor may test a whole window when this batch fills it.
            let (observer, name) = (Arc::clone(observer), loaded.name().to_string());
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || observer.observe(&name, version, &batch));
                }
                Err(_) => observer.observe(&name, version, &batch),
            }
        }
    }
}

/// Names being loaded, with how many loads of each are running.
type LoadingSet = std::sync::Mutex<BTreeMap<ModelName, usize>>;

/// One load of a name, counted in the loading set for as long as it runs — also when its future
/// is dropped (a client that disconnects, a shutdown), so readiness cannot stick at "loading";
/// counted, so the first of two overlapping loads to end does not end the other's.
struct Loading<'a> {
    set: &'a LoadingSet,
    name: ModelName,
}

impl<'a> Loading<'a> {
    fn start(set: &'a LoadingSet, name: &ModelName) -> Self {
        *set.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.clone())
            .or_insert(0) += 1;
        Self {
            set,
            name: name.clone(),
        }
    }
}

impl Drop for Loading<'_> {
    fn drop(&mut self) {
        let mut set = self.set.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = set.get_mut(&self.name) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                set.remove(&self.name);
            }
        }
    }
}

#[async_trait]
impl Server for ModelServer {
    async fn live(&self) -> Result<bool> {
        Ok(true)
    }

    /// Ready while it serves at least one model and no model it does not serve yet is still
    /// loading: a server whose only model was unloaded has nothing to answer with, and says so
    /// to its load balancer; a new version of a served model loads behind the old one without
    /// taking the server out of rotation.
    async fn ready(&self) -> Result<bool> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let first_load = self
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .any(|name| !models.contains_key(name));
        Ok(!models.is_empty() && !first_load)
    }

    async fn metadata(&self) -> Result<ServerMetadata> {
        Ok(ServerMetadata {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: vec!["binary_tensor_data".into(), "model_repository".into()],
        })
    }

    async fn model_metadata(
        &self,
        name: &ModelName,
        version: Option<Version>,
    ) -> Result<ModelMetadata> {
        let loaded = self.resolve(name, version)?;
        let versions = self
            .models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|s| s.versions.keys().map(Version::to_string).collect())
            .unwrap_or_default();
        Ok(loaded.metadata(versions))
    }

    async fn model_ready(&self, name: &ModelName, version: Option<Version>) -> Result<bool> {
        // Only warmed-up versions are in the repository; a model still loading is not ready.
        match self.resolve(name, version) {
            Ok(_) => Ok(true),
            Err(e) if e.is_unavailable() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_models(&self) -> Result<Vec<ModelState>> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        Ok(models
            .iter()
            .flat_map(|(name, slot)| {
                slot.versions.keys().map(move |v| ModelState {
                    name: name.to_string(),
                    version: Some(v.to_string()),
                    ready: true,
                })
            })
            .collect())
    }

    async fn load(&self, name: &ModelName, options: LoadOptions) -> Result<()> {
        let (registry, source) = self.registry.as_ref().ok_or_else(|| {
            Error::not_supported(
                "operation",
                "load",
                "this server has no registry to load models from",
            )
        })?;
        let uri = match options.uri {
            Some(uri) => uri,
            None => format!("models:/{name}/latest").parse::<ModelUri>()?,
        };
        let _loading = Loading::start(&self.loading, name);
        async {
            let version = registry.resolve(&uri).await?;
            if let Some((engine, path)) = &self.gate {
                mlops_core::policy::check_deploy(
                    engine.as_ref(),
                    path,
                    &version,
                    Some(&self.name),
                )?;
            }
            let artifact = source.fetch(&version).await?;
            self.load_artifact(name, version.version, &artifact)
        }
        .await
    }

    async fn unload(&self, name: &ModelName, version: Option<Version>) -> Result<()> {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        match version {
            None => {
                models
                    .remove(name)
                    .ok_or_else(|| Error::not_found("model", name))?;
            }
            Some(v) => {
                let slot = models
                    .get_mut(name)
                    .ok_or_else(|| Error::not_found("model", name))?;
                slot.versions
                    .remove(&v)
                    .ok_or_else(|| Error::not_found("model version", format!("{name} v{v}")))?;
                if slot.default == Some(v) {
                    slot.default = slot.versions.keys().next_back().copied();
                }
                // Routing that names the unloaded version no longer holds.
                if let Some(r) = &slot.routing
                    && (r.primary == v
                        || r.canary.as_ref().is_some_and(|c| c.version == v)
                        || r.shadow == Some(v))
                {
                    slot.routing = None;
                }
                if slot.versions.is_empty() {
                    models.remove(name);
                }
            }
        }
        tracing::info!(model = %name, ?version, "model unloaded");
        Ok(())
    }

    async fn infer(&self, request: InferRequest) -> Result<InferResponse> {
        let started = std::time::Instant::now();
        let key = request
            .parameters
            .get(ROUTING_KEY)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let routed = self.route(&request.model_name, request.model_version, key.as_deref());
        let (loaded, shadow) = match routed {
            Ok(l) => l,
            Err(e) => {
                let (name, version) = self.labels(&request.model_name, request.model_version);
                self.metrics
                    .requests
                    .with_label_values(&[&name, &version, error_outcome(&e)])
                    .inc();
                return Err(e);
            }
        };
        if synthetic(&request) {
            return self.infer_on(&loaded, request).await;
        }
        let result = async {
            let request = self.preprocess(&loaded, request).await?;
            // The shadow sees what the primary saw: the preprocessed inputs.
            let copy = shadow.as_ref().map(|_| request.clone());
            let answer = self.infer_on(&loaded, request).await?;
            Ok::<_, Error>((copy, answer))
        }
        .await;
        let result = match result {
            Ok((copy, answer)) => {
                if let (Some(shadow), Some(copy)) = (shadow, copy) {
                    shadow::mirror(&self.shadows, shadow, copy, answer.outputs.clone());
                }
                Ok(answer)
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(_) => loaded.series.ok.inc(),
            Err(e) => self
                .metrics
                .requests
                .with_label_values(&[
                    loaded.name().as_str(),
                    &loaded.version().to_string(),
                    error_outcome(e),
                ])
                .inc(),
        }
        loaded
            .series
            .duration
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

impl ModelServer {
    /// The request with the inputs the model's preprocessor (if any) makes of its own.
    async fn preprocess(
        &self,
        loaded: &LoadedModel,
        mut request: InferRequest,
    ) -> Result<InferRequest> {
        if let Some(p) = self.preprocessors.get(loaded.name()) {
            let inputs = std::mem::take(&mut request.inputs);
            request.inputs = p
                .preprocess(loaded.name(), loaded.model().signature(), inputs)
                .await?;
        }
        Ok(request)
    }

    async fn infer_on(
        &self,
        loaded: &Arc<LoadedModel>,
        request: InferRequest,
    ) -> Result<InferResponse> {
        use tracing::Instrument;
        let span = tracing::debug_span!("infer", model = %loaded.name(), version = %loaded.version(), id = ?request.id);
        let synthetic = synthetic(&request);
        let (ordered, mut outputs) = loaded.run(&request.inputs).instrument(span).await?;
        if !request.outputs.is_empty() {
            for r in &request.outputs {
                if !outputs.iter().any(|o| o.name() == r.name) {
                    return Err(Error::invalid(
                        "output",
                        format!("{} has no output {:?}", loaded.name(), r.name),
                    ));
                }
            }
            outputs.retain(|o| request.outputs.iter().any(|r| r.name == o.name()));
        }
        if !synthetic {
            self.observe(loaded, &ordered);
        }
        Ok(InferResponse {
            model_name: loaded.name().clone(),
            model_version: Some(loaded.version()),
            id: request.id,
            parameters: BTreeMap::new(),
            outputs,
        })
    }
}

/// Metric registration only fails on duplicate or malformed names, which are constants here.
#[allow(clippy::panic)]
fn unreachable_metrics(e: &Error) -> ServeMetrics {
    panic!("serving metrics could not be registered: {e}")
}
