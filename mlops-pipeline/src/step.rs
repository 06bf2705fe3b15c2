//! Steps: what a pipeline runs. A step reads the outputs of the steps it depends on and its
//! parameters, and answers its own outputs, each a JSON description with a content digest (what
//! caching compares downstream).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use mlops_core::{CancelToken, Digest, Error, Result, RunId, Store};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One output of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Digest of the output's content (a dataset version's manifest, a model tree, the JSON of
    /// a value): what the cache keys of dependants are made of.
    pub digest: Digest,
    /// What it is, for the steps that read it (`{"dataset": "churn", "version": 3}`, a metric…).
    pub value: serde_json::Value,
}

impl Output {
    /// An output whose digest is that of `value`'s canonical JSON (for small values: a metric,
    /// a decision, a name).
    pub fn value(value: serde_json::Value) -> Self {
        Self {
            digest: Digest::of(canonical_json(&value).as_bytes()),
            value,
        }
    }

    /// An output with a known content digest.
    pub fn with_digest(digest: Digest, value: serde_json::Value) -> Self {
        Self { digest, value }
    }

    /// An output holding a typed value (a dataset or model reference) whose content has the
    /// digest `digest`.
    pub fn typed<T: Serialize>(digest: Digest, value: &T) -> Result<Self> {
        let value = serde_json::to_value(value).map_err(|e| Error::backend("serde_json", e))?;
        Ok(Self::with_digest(digest, value))
    }

    /// An output holding a typed value, digested by its canonical JSON (a decision, a verdict).
    pub fn of<T: Serialize>(value: &T) -> Result<Self> {
        let value = serde_json::to_value(value).map_err(|e| Error::backend("serde_json", e))?;
        Ok(Self::value(value))
    }

    /// Reads the value as `T` (the type the producing step wrote with [`typed`](Self::typed)
    /// or [`of`](Self::of)).
    pub fn get<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.value.clone())
            .map_err(|e| Error::invalid("step output", self.value.to_string()).with_source(e))
    }
}

/// A step's outputs by name.
pub type Outputs = BTreeMap<String, Output>;

/// Reads a step's parameters (a pipeline file's `with:`) into `P`, one struct that both
/// [`Step::check`] and [`Step::run`] use — declare it `#[serde(deny_unknown_fields)]` so a
/// misspelt key is an error naming it. Absent parameters read as an empty mapping.
pub fn parse_params<P: DeserializeOwned>(step: &str, params: &serde_json::Value) -> Result<P> {
    let params = match params {
        serde_json::Value::Null => serde_json::Value::Object(Default::default()),
        other => other.clone(),
    };
    serde_json::from_value(params)
        .map_err(|e| Error::invalid("step param", format!("parameters of {step}")).with_source(e))
}

/// JSON with sorted keys and no insignificant whitespace (serde_json's `Value` keeps object keys
/// sorted), so equal values hash equally.
pub(crate) fn canonical_json(value: &serde_json::Value) -> String {
    value.to_string()
}

/// What a running step sees.
pub struct StepContext {
    /// The pipeline's name.
    pub pipeline: String,
    /// The step's name.
    pub step: String,
    /// Upstream outputs, by the names the step gave its inputs.
    pub inputs: BTreeMap<String, Output>,
    /// The step's parameters.
    pub params: serde_json::Value,
    /// The store the pipeline runs against.
    pub store: Arc<dyn Store>,
    /// Fires when the pipeline is cancelled or the step times out: stop at the next safe point.
    pub cancel: CancelToken,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The step's tracked run, when the pipeline is tracked: runs the step starts itself
    /// (a training run) belong under it.
    pub run_id: Option<RunId>,
    gpus: AtomicU32,
    cpu_nanos: AtomicU64,
}

impl fmt::Debug for StepContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StepContext")
            .field("pipeline", &self.pipeline)
            .field("step", &self.step)
            .field("inputs", &self.inputs)
            .field("params", &self.params)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl StepContext {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        pipeline: &str,
        step: &str,
        inputs: BTreeMap<String, Output>,
        params: serde_json::Value,
        store: Arc<dyn Store>,
        cancel: CancelToken,
        attempt: u32,
        run_id: Option<RunId>,
    ) -> Self {
        Self {
            pipeline: pipeline.to_owned(),
            step: step.to_owned(),
            inputs,
            params,
            store,
            cancel,
            attempt,
            run_id,
            gpus: AtomicU32::new(0),
            cpu_nanos: AtomicU64::new(0),
        }
    }

    /// An input; [`Error::InvalidArgument`] naming it when the pipeline did not wire it.
    pub fn input(&self, name: &str) -> Result<&Output> {
        self.inputs.get(name).ok_or_else(|| {
            Error::invalid(
                "step input",
                format!(
                    "step {} has no input {name:?} (inputs: {})",
                    self.step,
                    self.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// Every parameter, read into `P` with [`parse_params`].
    pub fn params_as<P: DeserializeOwned>(&self) -> Result<P> {
        parse_params(&self.step, &self.params)
    }

    /// A parameter, deserialised; `None` when absent.
    pub fn param<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        match self.params.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                Error::invalid("step param", format!("{}.{key}", self.step)).with_source(e)
            }),
        }
    }

    /// A required parameter.
    pub fn require<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.param(key)?.ok_or_else(|| {
            Error::invalid(
                "step param",
                format!("step {} needs the parameter {key:?}", self.step),
            )
        })
    }

    /// Declares that the step used `n` GPUs for its whole run (priced as GPU time).
    pub fn use_gpus(&self, n: u32) {
        self.gpus.store(n, Ordering::Relaxed);
    }

    pub(crate) fn gpus(&self) -> u32 {
        self.gpus.load(Ordering::Relaxed)
    }

    /// Adds CPU time the step spent (what [`blocking`](Self::blocking) measures by itself).
    pub fn add_cpu_seconds(&self, seconds: f64) {
        if seconds.is_finite() && seconds > 0.0 {
            self.cpu_nanos
                .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
        }
    }

    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.cpu_nanos.load(Ordering::Relaxed) as f64 / 1e9
    }

    /// Runs CPU-bound work on tokio's blocking threads, off the async ones, counting the CPU
    /// time of the thread it ran on as the step's.
    pub async fn blocking<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&StepContext) -> Result<T> + Send + 'static,
    {
        let ctx = self.clone();
        tokio::task::spawn_blocking(move || {
            let start = mlops_core::time::thread_cpu_seconds();
            let out = f(&ctx);
            if let (Some(a), Some(b)) = (start, mlops_core::time::thread_cpu_seconds()) {
                ctx.add_cpu_seconds(b - a);
            }
            out
        })
        .await
        .map_err(|e| Error::backend("step thread", e))?
    }

    /// Fails with [`Error::Unavailable`] when cancelled: call it between units of work.
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::unavailable(format!("step {} cancelled", self.step)))
        } else {
            Ok(())
        }
    }
}

/// What a pipeline runs.
///
/// # Contract
///
/// - `run` is deterministic in its inputs, parameters and code version, or caching would serve
///   stale outputs: a step that reads the outside world declares it as an input or parameter.
/// - `outputs_exist` says whether outputs recorded by an earlier run are still there (a
///   dataset version not garbage-collected, a file still on disk); the default trusts them.
#[async_trait::async_trait]
pub trait Step: fmt::Debug + Send + Sync + 'static {
    /// Runs the step.
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs>;

    /// Checks parameters before anything runs (a pipeline file names the step in the error);
    /// the default accepts any.
    fn check(&self, _params: &serde_json::Value) -> Result<()> {
        Ok(())
    }

    /// Whether `outputs`, recorded by an earlier run, still exist.
    async fn outputs_exist(&self, _ctx: &StepContext, _outputs: &Outputs) -> Result<bool> {
        Ok(true)
    }
}

type AsyncFn =
    dyn Fn(Arc<StepContext>) -> Pin<Box<dyn Future<Output = Result<Outputs>> + Send>> + Send + Sync;

/// A step from an async closure.
pub struct FnStep(Box<AsyncFn>);

impl FnStep {
    /// Wraps `f`.
    pub fn new<F, Fut>(f: F) -> Self
    where
        F: Fn(Arc<StepContext>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outputs>> + Send + 'static,
    {
        Self(Box::new(move |ctx| Box::pin(f(ctx))))
    }
}

impl fmt::Debug for FnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnStep")
    }
}

#[async_trait::async_trait]
impl Step for FnStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        (self.0)(ctx).await
    }
}

type SyncFn = dyn Fn(&StepContext) -> Result<Outputs> + Send + Sync;

/// A CPU-bound step from a plain closure: it runs on tokio's blocking threads, off the async
/// ones, and its CPU time is measured on its own thread.
#[derive(Clone)]
pub struct BlockingStep(Arc<SyncFn>);

impl BlockingStep {
    /// Wraps `f`.
    pub fn new<F>(f: F) -> Self
    where
        F: Fn(&StepContext) -> Result<Outputs> + Send + Sync + 'static,
    {
        Self(Arc::new(f))
    }
}

impl fmt::Debug for BlockingStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlockingStep")
    }
}

#[async_trait::async_trait]
impl Step for BlockingStep {
    async fn run(&self, ctx: Arc<StepContext>) -> Result<Outputs> {
        let f = self.0.clone();
        ctx.blocking(move |ctx| f(ctx)).await
    }
}
