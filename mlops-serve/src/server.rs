//! [`ModelServer`]: the in-process [`Server`].

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use mlops_core::drift::InferenceObserver;
use mlops_core::model::{ArtifactSource, Model, ModelArtifact, ModelLoader};
use mlops_core::policy::PolicyEngine;
use mlops_core::registry::{Registry, RegistryExt};
use mlops_core::serve::{
    InferRequest, InferResponse, LoadOptions, ModelMetadata, ModelState, Server, ServerMetadata,
    TensorMetadata,
};
use mlops_core::signature::{Schema, Signature};
use mlops_core::{DataType, Error, ModelUri, Result, Tensor};

use crate::batch::{BatchConfig, Batcher};
use crate::metrics::{ServeMetrics, error_outcome};
use crate::routing::Routing;

/// One input or output as the protocol describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spec {
    name: String,
    datatype: DataType,
    shape: Vec<i64>,
}

impl Spec {
    fn accepts(&self, shape: &[usize]) -> bool {
        self.shape.len() == shape.len()
            && self
                .shape
                .iter()
                .zip(shape)
                .all(|(w, g)| *w < 0 || u64::try_from(*w).ok() == u64::try_from(*g).ok())
    }
}

fn specs(schema: &Schema, side: &str) -> Vec<Spec> {
    match schema {
        // A tabular model takes one 1-D tensor per column, as KServe's and MLServer's pandas
        // codecs send them.
        Schema::Columns(cols) => cols
            .iter()
            .enumerate()
            .map(|(i, c)| Spec {
                name: c.name.clone().unwrap_or_else(|| format!("{side}{i}")),
                datatype: c.col_type.tensor_type(),
                shape: vec![-1],
            })
            .collect(),
        Schema::Tensors(ts) => ts
            .iter()
            .enumerate()
            .map(|(i, t)| Spec {
                name: t.name.clone().unwrap_or_else(|| format!("{side}{i}")),
                datatype: t.datatype,
                shape: t.shape.clone(),
            })
            .collect(),
    }
}

/// A loaded, warmed-up model version.
#[derive(Debug)]
pub struct LoadedModel {
    name: String,
    version: String,
    model: Arc<dyn Model>,
    inputs: Vec<Spec>,
    outputs: Vec<Spec>,
    /// The queue to the version's batching worker, when it batches.
    batcher: Option<Batcher>,
    /// This version's metric series, looked up once.
    series: Series,
}

/// Metric handles of one model version (label lookups happen at load, not per request).
#[derive(Debug)]
struct Series {
    ok: prometheus::IntCounter,
    duration: prometheus::Histogram,
    batch: prometheus::Histogram,
}

impl LoadedModel {
    /// The model.
    pub fn model(&self) -> &Arc<dyn Model> {
        &self.model
    }

    /// The version label.
    pub fn version(&self) -> &str {
        &self.version
    }

    fn metadata(&self, versions: Vec<String>) -> ModelMetadata {
        let meta = |s: &Spec| TensorMetadata {
            name: s.name.clone(),
            datatype: s.datatype,
            shape: s.shape.clone(),
        };
        ModelMetadata {
            name: self.name.clone(),
            versions,
            platform: format!("mlops-{}", self.model.flavor()),
            inputs: self.inputs.iter().map(meta).collect(),
            outputs: self.outputs.iter().map(meta).collect(),
        }
    }

    /// Validates `inputs` and predicts, through the batching worker when the version batches
    /// (which records the batch size itself). Returns the inputs in signature order too.
    async fn run<'a>(&self, inputs: &'a [Tensor]) -> Result<(Vec<&'a Tensor>, Vec<Tensor>)> {
        let ordered = self.validate(inputs)?;
        let owned: Vec<Tensor> = ordered.iter().map(|t| (*t).clone()).collect();
        let outputs = match &self.batcher {
            Some(b) => b.submit(owned).await?,
            None => {
                let rows = owned
                    .first()
                    .and_then(|t| t.shape().first().copied())
                    .unwrap_or(1);
                self.series.batch.observe(rows as f64);
                self.model.predict(&owned)?
            }
        };
        Ok((ordered, outputs))
    }

    /// Checks a request's inputs against the signature and returns them in signature order.
    fn validate<'a>(&self, inputs: &'a [Tensor]) -> Result<Vec<&'a Tensor>> {
        for t in inputs {
            if !self.inputs.iter().any(|s| s.name == t.name()) {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "unexpected input {:?}; {} takes {}",
                        t.name(),
                        self.name,
                        self.inputs
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        let mut ordered = Vec::with_capacity(self.inputs.len());
        for spec in &self.inputs {
            let mut matching = inputs.iter().filter(|t| t.name() == spec.name);
            let t = matching
                .next()
                .ok_or_else(|| Error::invalid("input", format!("missing input {:?}", spec.name)))?;
            if matching.next().is_some() {
                return Err(Error::invalid(
                    "input",
                    format!("input {:?} given twice", spec.name),
                ));
            }
            if t.datatype() != spec.datatype {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {:?} must be {}, got {}",
                        spec.name,
                        spec.datatype,
                        t.datatype()
                    ),
                ));
            }
            if !spec.accepts(t.shape()) {
                return Err(Error::invalid(
                    "input",
                    format!(
                        "input {:?} must have shape {:?} (-1 = any), got {:?}",
                        spec.name,
                        spec.shape,
                        t.shape()
                    ),
                ));
            }
            check_finite(t)?;
            ordered.push(t);
        }
        Ok(ordered)
    }
}

/// Floating-point inputs must be finite: NaN or ±inf in a request is a client error. Reads the
/// little-endian words in place (no copy of the tensor).
fn check_finite(t: &Tensor) -> Result<()> {
    let data = t.data();
    let bad = match t.datatype() {
        DataType::Fp32 => data
            .chunks_exact(4)
            .position(|c| !f32::from_le_bytes([c[0], c[1], c[2], c[3]]).is_finite()),
        DataType::Fp64 => data.chunks_exact(8).position(|c| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            !f64::from_le_bytes(w).is_finite()
        }),
        // Exponent all ones: infinity or NaN, in both 16-bit formats.
        DataType::Fp16 => data
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7c00 == 0x7c00),
        DataType::Bf16 => data
            .chunks_exact(2)
            .position(|c| u16::from_le_bytes([c[0], c[1]]) & 0x7f80 == 0x7f80),
        _ => None,
    };
    match bad {
        Some(i) => Err(Error::invalid(
            "input",
            format!("input {:?} element {i} is not finite", t.name()),
        )),
        None => Ok(()),
    }
}

/// A zero-valued input for a spec (variable dimensions 1), to warm a model up.
fn warmup_input(spec: &Spec) -> Result<Tensor> {
    let shape: Vec<usize> = spec
        .shape
        .iter()
        .map(|d| usize::try_from(*d).ok().filter(|d| *d > 0).unwrap_or(1))
        .collect();
    let n: usize = shape.iter().product();
    let data = match spec.datatype.size() {
        Some(size) => vec![0u8; n * size],
        // BYTES: n empty elements, each a 4-byte zero length.
        None => vec![0u8; n * 4],
    };
    Tensor::new(spec.name.clone(), spec.datatype, shape, data)
}

#[derive(Debug, Default)]
struct Slot {
    versions: BTreeMap<String, Arc<LoadedModel>>,
    /// The version served when a request names none and no routing is set: the last loaded.
    default: Option<String>,
    /// Canary and shadow routing, when set.
    routing: Option<Routing>,
}

/// The routing key a request carries (`parameters.routing_key`; the HTTP transport copies
/// the `X-Routing-Key` header there).
pub const ROUTING_KEY: &str = "routing_key";

/// What shadow traffic has shown for one model.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ShadowStats {
    /// Requests mirrored.
    pub requests: u64,
    /// Mirrored requests the shadow failed.
    pub failures: u64,
    /// Largest absolute difference seen between a shadow output and the answer sent.
    pub max_difference: f64,
    /// Mirrored requests whose outputs differed in shape, datatype or value.
    pub differing: u64,
    /// Total shadow latency, seconds.
    pub latency_seconds: f64,
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
    models: RwLock<BTreeMap<String, Slot>>,
    tickets: std::sync::atomic::AtomicU64,
    shadows: Arc<std::sync::Mutex<BTreeMap<String, ShadowStats>>>,
    /// Models being loaded that serve no version yet: requests get 503, not 404.
    loading: std::sync::Mutex<std::collections::BTreeSet<String>>,
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
                models: RwLock::new(BTreeMap::new()),
                tickets: std::sync::atomic::AtomicU64::new(0),
                shadows: Arc::new(std::sync::Mutex::new(BTreeMap::new())),
                loading: std::sync::Mutex::new(std::collections::BTreeSet::new()),
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
    pub fn load_model(&self, name: &str, version: &str, model: Arc<dyn Model>) -> Result<()> {
        self.load_model_with(name, version, model, self.batching)
    }

    /// Like [`load_model`](Self::load_model) with this version's own batching.
    pub fn load_model_with(
        &self,
        name: &str,
        version: &str,
        model: Arc<dyn Model>,
        batching: BatchConfig,
    ) -> Result<()> {
        if name.is_empty() || name.contains('/') || version.is_empty() || version.contains('/') {
            return Err(Error::invalid(
                "model",
                format!(
                    "{name:?} version {version:?}: names and versions must be non-empty, without '/'"
                ),
            ));
        }
        let signature: &Signature = model.signature();
        let inputs = specs(&signature.inputs, "input");
        let outputs = signature
            .outputs
            .as_ref()
            .map(|o| specs(o, "output"))
            .unwrap_or_default();
        let warm: Vec<Tensor> = inputs.iter().map(warmup_input).collect::<Result<_>>()?;
        model.predict(&warm).map_err(|e| {
            Error::invalid(
                "model",
                format!("{name} v{version} failed its warm-up prediction: {e}"),
            )
        })?;
        let shapes: Vec<Vec<i64>> = inputs.iter().map(|s| s.shape.clone()).collect();
        let batcher = if batching.enabled() && crate::batch::batchable(&shapes) {
            let histogram = self.metrics.batch.with_label_values(&[name]);
            let on_batch: crate::batch::OnBatch =
                Arc::new(move |rows| histogram.observe(rows as f64));
            Some(Batcher::start(
                name,
                Arc::clone(&model),
                batching,
                on_batch,
            )?)
        } else {
            None
        };
        let series = Series {
            ok: self
                .metrics
                .requests
                .with_label_values(&[name, version, "ok"]),
            duration: self.metrics.duration.with_label_values(&[name, version]),
            batch: self.metrics.batch.with_label_values(&[name]),
        };
        let loaded = LoadedModel {
            name: name.to_string(),
            version: version.to_string(),
            model,
            inputs,
            outputs,
            batcher,
            series,
        };
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models.entry(name.to_string()).or_default();
        slot.versions.insert(version.to_string(), Arc::new(loaded));
        slot.default = Some(version.to_string());
        tracing::info!(model = name, version, "model loaded");
        Ok(())
    }

    /// Serves an artifact through the loader of its flavor.
    pub fn load_artifact(&self, name: &str, version: &str, artifact: &ModelArtifact) -> Result<()> {
        let loader = self.loaders.get(&artifact.flavor).ok_or_else(|| {
            Error::NotSupported(format!(
                "no loader for flavor {:?} (loaders: {})",
                artifact.flavor,
                self.loaders.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        self.load_model(name, version, loader.load(artifact)?)
    }

    /// Routes requests for `name` that name no version: a primary, optionally a weighted
    /// canary and a shadow. Every version named must be loaded.
    pub fn set_routing(&self, name: &str, routing: Routing) -> Result<()> {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models
            .get_mut(name)
            .ok_or_else(|| Error::not_found("model", name))?;
        let named = std::iter::once(&routing.primary)
            .chain(routing.canary.as_ref().map(|c| &c.version))
            .chain(routing.shadow.as_ref());
        for v in named {
            if !slot.versions.contains_key(v) {
                return Err(Error::not_found("model version", format!("{name} v{v}")));
            }
        }
        slot.routing = Some(routing);
        Ok(())
    }

    /// Removes routing: requests go to the last version loaded again.
    pub fn clear_routing(&self, name: &str) -> Result<()> {
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        let slot = models
            .get_mut(name)
            .ok_or_else(|| Error::not_found("model", name))?;
        slot.routing = None;
        Ok(())
    }

    /// What shadow traffic of `name` has shown so far.
    pub fn shadow_stats(&self, name: &str) -> ShadowStats {
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
        name: &str,
        version: Option<&str>,
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
            .get(pick)
            .cloned()
            .ok_or_else(|| Error::not_found("model version", format!("{name} v{pick}")))?;
        let shadow = routing
            .shadow
            .as_ref()
            .and_then(|v| slot.versions.get(v).cloned());
        Ok((chosen, shadow))
    }

    /// The version a request for `name` (and optionally `version`) is served by.
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<Arc<LoadedModel>> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = models.get(name) else {
            drop(models);
            return Err(self.absent(name));
        };
        let v = match version {
            Some(v) => v,
            None => slot
                .default
                .as_deref()
                .ok_or_else(|| Error::not_found("model", name))?,
        };
        slot.versions
            .get(v)
            .cloned()
            .ok_or_else(|| Error::not_found("model version", format!("{name} v{v}")))
    }

    /// Why `name` cannot answer: still loading (503) or unknown (404).
    fn absent(&self, name: &str) -> Error {
        if self
            .loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
        {
            Error::Unavailable {
                message: format!("model {name} is loading"),
                source: None,
            }
        } else {
            Error::not_found("model", name)
        }
    }

    /// Serves the model in `dir` (a folder written by [`write_model_dir`], or any folder with
    /// a `FLAVOR` file naming its flavor beside the flavor's files).
    pub fn load_dir(&self, name: &str, version: &str, dir: &std::path::Path) -> Result<()> {
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
            let version = loaded.version.parse().ok();
            // Off the request path: a monitor may test a whole window when this batch fills it.
            let (observer, name) = (Arc::clone(observer), loaded.name.clone());
            match tokio::runtime::Handle::try_current() {
                Ok(handle) => {
                    handle.spawn_blocking(move || observer.observe(&name, version, &batch));
                }
                Err(_) => observer.observe(&name, version, &batch),
            }
        }
    }
}

#[async_trait]
impl Server for ModelServer {
    async fn live(&self) -> Result<bool> {
        Ok(true)
    }

    async fn ready(&self) -> Result<bool> {
        Ok(true)
    }

    async fn metadata(&self) -> Result<ServerMetadata> {
        Ok(ServerMetadata {
            name: self.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: vec!["binary_tensor_data".into(), "model_repository".into()],
        })
    }

    async fn model_metadata(&self, name: &str, version: Option<&str>) -> Result<ModelMetadata> {
        let loaded = self.resolve(name, version)?;
        let versions = self
            .models
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|s| s.versions.keys().cloned().collect())
            .unwrap_or_default();
        Ok(loaded.metadata(versions))
    }

    async fn model_ready(&self, name: &str, version: Option<&str>) -> Result<bool> {
        // Only warmed-up versions are in the repository; a model still loading is not ready.
        match self.resolve(name, version) {
            Ok(_) => Ok(true),
            Err(Error::Unavailable { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn list_models(&self) -> Result<Vec<ModelState>> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        Ok(models
            .iter()
            .flat_map(|(name, slot)| {
                slot.versions.keys().map(move |v| ModelState {
                    name: name.clone(),
                    version: Some(v.clone()),
                    ready: true,
                })
            })
            .collect())
    }

    async fn load(&self, name: &str, options: LoadOptions) -> Result<()> {
        let (registry, source) = self.registry.as_ref().ok_or_else(|| {
            Error::NotSupported("this server has no registry to load models from".into())
        })?;
        let uri = match options.uri {
            Some(uri) => uri,
            None => format!("models:/{name}/latest").parse::<ModelUri>()?,
        };
        self.loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_string());
        let loaded = async {
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
            self.load_artifact(name, &version.version.to_string(), &artifact)
        }
        .await;
        self.loading
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        loaded
    }

    async fn unload(&self, name: &str, version: Option<&str>) -> Result<()> {
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
                    .remove(v)
                    .ok_or_else(|| Error::not_found("model version", format!("{name} v{v}")))?;
                if slot.default.as_deref() == Some(v) {
                    slot.default = slot.versions.keys().next_back().cloned();
                }
                // Routing that names the unloaded version no longer holds.
                if let Some(r) = &slot.routing
                    && (r.primary == v
                        || r.canary.as_ref().is_some_and(|c| c.version == v)
                        || r.shadow.as_deref() == Some(v))
                {
                    slot.routing = None;
                }
                if slot.versions.is_empty() {
                    models.remove(name);
                }
            }
        }
        tracing::info!(model = name, version, "model unloaded");
        Ok(())
    }

    async fn infer(&self, request: InferRequest) -> Result<InferResponse> {
        let started = std::time::Instant::now();
        let model = request.model_name.clone();
        let key = request
            .parameters
            .get(ROUTING_KEY)
            .and_then(|v| v.as_str())
            .map(str::to_string);
        let routed = self.route(
            &request.model_name,
            request.model_version.as_deref(),
            key.as_deref(),
        );
        let (loaded, shadow) = match routed {
            Ok(l) => l,
            Err(e) => {
                let version = request.model_version.as_deref().unwrap_or("");
                self.metrics
                    .requests
                    .with_label_values(&[model.as_str(), version, error_outcome(&e)])
                    .inc();
                return Err(e);
            }
        };
        let mirror = shadow.as_ref().map(|_| request.clone());
        let result = self.infer_on(&loaded, request).await;
        if let (Some(shadow), Some(copy), Ok(answer)) = (shadow, mirror, &result) {
            self.mirror(shadow, copy, answer.outputs.clone());
        }
        match &result {
            Ok(_) => loaded.series.ok.inc(),
            Err(e) => self
                .metrics
                .requests
                .with_label_values(&[model.as_str(), loaded.version.as_str(), error_outcome(e)])
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
    /// Sends a copy of a request to the shadow in the background and records how its answer
    /// compares with the one that was sent.
    fn mirror(&self, shadow: Arc<LoadedModel>, request: InferRequest, sent: Vec<Tensor>) {
        let stats = Arc::clone(&self.shadows);
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let started = std::time::Instant::now();
            let result = shadow
                .run(&request.inputs)
                .await
                .map(|(_, outputs)| outputs);
            let elapsed = started.elapsed().as_secs_f64();
            let mut all = stats.lock().unwrap_or_else(PoisonError::into_inner);
            let s = all.entry(shadow.name.clone()).or_default();
            s.requests += 1;
            s.latency_seconds += elapsed;
            match result {
                Err(_) => s.failures += 1,
                Ok(outputs) => {
                    let diff = difference(&sent, &outputs);
                    if diff != 0.0 {
                        s.differing += 1;
                    }
                    s.max_difference = s.max_difference.max(diff);
                }
            }
        });
    }

    async fn infer_on(
        &self,
        loaded: &Arc<LoadedModel>,
        request: InferRequest,
    ) -> Result<InferResponse> {
        use tracing::Instrument;
        let span = tracing::debug_span!("infer", model = %loaded.name, version = %loaded.version, id = ?request.id);
        let (ordered, mut outputs) = loaded.run(&request.inputs).instrument(span).await?;
        if !request.outputs.is_empty() {
            for r in &request.outputs {
                if !outputs.iter().any(|o| o.name() == r.name) {
                    return Err(Error::invalid(
                        "output",
                        format!("{} has no output {:?}", loaded.name, r.name),
                    ));
                }
            }
            outputs.retain(|o| request.outputs.iter().any(|r| r.name == o.name()));
        }
        self.observe(loaded, &ordered);
        Ok(InferResponse {
            model_name: loaded.name.clone(),
            model_version: Some(loaded.version.clone()),
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

/// Largest absolute difference between two output lists matched by position (infinite when
/// names, datatypes or shapes differ, or values cannot be compared).
fn difference(a: &[Tensor], b: &[Tensor]) -> f64 {
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    let mut max = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        if x.datatype() != y.datatype() || x.shape() != y.shape() {
            return f64::INFINITY;
        }
        if x.datatype() == DataType::Bytes {
            if x.data() != y.data() {
                return f64::INFINITY;
            }
            continue;
        }
        match (x.to_f64_lossy(), y.to_f64_lossy()) {
            (Ok(p), Ok(q)) => {
                for (u, v) in p.iter().zip(&q) {
                    max = max.max((u - v).abs());
                }
            }
            _ => return f64::INFINITY,
        }
    }
    max
}

/// The file naming a model directory's flavor.
pub const FLAVOR_FILE: &str = "FLAVOR";

/// Writes `artifact` into `dir` (created): its files plus [`FLAVOR_FILE`].
pub fn write_model_dir(artifact: &ModelArtifact, dir: &std::path::Path) -> Result<()> {
    let io = |e: std::io::Error, p: &std::path::Path| {
        Error::invalid("model dir", format!("cannot write {}: {e}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|e| io(e, dir))?;
    for (path, bytes) in &artifact.files {
        let target = dir.join(path.as_str());
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(e, parent))?;
        }
        std::fs::write(&target, bytes).map_err(|e| io(e, &target))?;
    }
    let flavor = dir.join(FLAVOR_FILE);
    std::fs::write(&flavor, format!("{}\n", artifact.flavor)).map_err(|e| io(e, &flavor))
}

/// Reads a model directory (every file, recursively; the flavor from [`FLAVOR_FILE`]).
pub fn read_model_dir(dir: &std::path::Path) -> Result<ModelArtifact> {
    let flavor_path = dir.join(FLAVOR_FILE);
    let flavor = std::fs::read_to_string(&flavor_path).map_err(|e| {
        Error::invalid(
            "model dir",
            format!(
                "{}: {e} (a model directory names its flavor in {FLAVOR_FILE})",
                flavor_path.display()
            ),
        )
    })?;
    let mut artifact = ModelArtifact::new(flavor.trim());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| {
            Error::invalid("model dir", format!("cannot read {}: {e}", d.display()))
        })?;
        for entry in entries {
            let path = entry
                .map_err(|e| {
                    Error::invalid("model dir", format!("cannot read {}: {e}", d.display()))
                })?
                .path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .map_err(|_| {
                    Error::invalid(
                        "model dir",
                        format!("{} escapes the folder", path.display()),
                    )
                })?
                .to_string_lossy()
                .replace('\\', "/");
            if rel == FLAVOR_FILE {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::invalid("model dir", format!("cannot read {}: {e}", path.display()))
            })?;
            artifact = artifact.with_file(mlops_core::ArtifactPath::new(rel)?, bytes);
        }
    }
    Ok(artifact)
}
