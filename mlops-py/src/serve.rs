//! [`Server`]: the SDK's model server in process — load models by registry URI, directory or
//! object, infer with NumPy arrays, route canaries — and its Open Inference Protocol HTTP
//! endpoint on a background thread ([`HttpServer`]).

use std::sync::{Arc, Mutex, PoisonError};

use mlops::serve::{HttpOptions, LoadOptions, ModelServer, Routing};
use mlops::storage::Artifacts;
use mlops::{InferRequest, ModelName, ModelUri, Server as _, Version};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::{tensors_from_dict, tensors_to_dict};
use crate::errors::OrPy;
use crate::model::Model;
use crate::registry::Registry;
use crate::runtime::{block_on, runtime};
use crate::store::{py_to_json, to_py};

fn model_name(py: Python<'_>, name: &str) -> PyResult<ModelName> {
    name.parse().or_py(py)
}

fn version(py: Python<'_>, v: Option<u64>) -> PyResult<Option<Version>> {
    v.map(Version::new).transpose().or_py(py)
}

/// Models served in process, by name and version, with the Open Inference Protocol's
/// semantics: inputs are checked against each model's signature (names, exact dtypes,
/// shapes) before it runs. Given a `registry`, models load by `models:/` URI (through the
/// `policy`'s deploy gate when given).
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct Server {
    inner: Arc<ModelServer>,
}

#[pymethods]
impl Server {
    #[new]
    #[pyo3(signature = (name="mlops", registry=None, policy=None, policy_path="data.mlops.governance"))]
    fn new(
        name: &str,
        registry: Option<&Bound<'_, Registry>>,
        policy: Option<&Bound<'_, crate::policy::PolicyEngine>>,
        policy_path: &str,
    ) -> Self {
        let mut builder = ModelServer::builder(name);
        for loader in crate::model::loaders() {
            builder = builder.loader(loader);
        }
        if let Some(registry) = registry {
            let registry = registry.get();
            let source = Arc::new(Artifacts::new(Arc::clone(&registry.store_ref().inner)));
            builder = builder.registry(Arc::clone(&registry.inner), source);
        }
        if let Some(policy) = policy {
            builder = builder.policy(Arc::clone(&policy.get().inner), policy_path);
        }
        Self {
            inner: Arc::new(builder.build()),
        }
    }

    /// Loads the version a `models:/` URI names (`models:/churn@champion`; the latest
    /// version when omitted) from the registry, and serves it as `name` under its version
    /// number; it becomes the default version.
    #[pyo3(signature = (name, model_uri=None))]
    fn load(&self, py: Python<'_>, name: &str, model_uri: Option<&str>) -> PyResult<()> {
        let name = model_name(py, name)?;
        let mut options = LoadOptions::default();
        if let Some(uri) = model_uri {
            options = LoadOptions::from_uri(uri.parse::<ModelUri>().or_py(py)?);
        }
        let server = Arc::clone(&self.inner);
        block_on(py, async move { server.load(&name, options).await })?.or_py(py)
    }

    /// Serves a model directory (`Model.save`, `mlops models export`) as `name`, `version`.
    #[pyo3(signature = (name, path, version=1))]
    fn load_dir(
        &self,
        py: Python<'_>,
        name: &str,
        path: std::path::PathBuf,
        version: u64,
    ) -> PyResult<()> {
        let name = model_name(py, name)?;
        let v = Version::new(version).or_py(py)?;
        let server = Arc::clone(&self.inner);
        py.detach(move || server.load_dir(&name, v, &path))
            .or_py(py)
    }

    /// Serves a model object (from `train` or `load_model`) as `name`, `version`.
    #[pyo3(signature = (name, model, version=1))]
    fn load_model(
        &self,
        py: Python<'_>,
        name: &str,
        model: &Bound<'_, Model>,
        version: u64,
    ) -> PyResult<()> {
        let name = model_name(py, name)?;
        let v = Version::new(version).or_py(py)?;
        let model = Arc::clone(&model.get().inner);
        let server = Arc::clone(&self.inner);
        py.detach(move || server.load_model(&name, v, model))
            .or_py(py)
    }

    /// Stops serving `name` (one version, or all).
    #[pyo3(signature = (name, version=None))]
    fn unload(&self, py: Python<'_>, name: &str, version: Option<u64>) -> PyResult<()> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let server = Arc::clone(&self.inner);
        block_on(py, async move { server.unload(&name, v).await })?.or_py(py)
    }

    /// The loaded models: `[{"name": str, "version": int | None, "ready": bool}]`.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let server = Arc::clone(&self.inner);
        let states = block_on(py, async move { server.list_models().await })?.or_py(py)?;
        let listed: Vec<serde_json::Value> = states
            .into_iter()
            .map(|s| {
                let version = s.version.and_then(|v| v.parse::<u64>().ok());
                serde_json::json!({"name": s.name, "version": version, "ready": s.ready})
            })
            .collect();
        crate::store::json_to_py(py, &serde_json::Value::Array(listed))
    }

    /// A model's metadata: name, versions, platform, inputs and outputs with datatypes and
    /// shapes.
    #[pyo3(signature = (name, version=None))]
    fn metadata<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        version: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let name = model_name(py, name)?;
        let v = self::version(py, version)?;
        let server = Arc::clone(&self.inner);
        let meta = block_on(py, async move { server.model_metadata(&name, v).await })?.or_py(py)?;
        to_py(py, &meta)
    }

    /// Runs `name` (its routed version, or `version`) on `inputs` (`{input name: array}`);
    /// returns `{output name: array}`. `parameters` are the protocol's request parameters.
    #[pyo3(signature = (name, inputs, version=None, parameters=None))]
    fn infer<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        inputs: &Bound<'py, PyAny>,
        version: Option<u64>,
        parameters: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let name = model_name(py, name)?;
        let tensors = tensors_from_dict("inputs", inputs)?;
        let mut request = InferRequest::new(name, tensors);
        if let Some(v) = self::version(py, version)? {
            request = request.with_version(v);
        }
        if let Some(p) = parameters.filter(|p| !p.is_none()) {
            match py_to_json("parameters", p)? {
                serde_json::Value::Object(map) => request.parameters = map.into_iter().collect(),
                _ => {
                    return Err(crate::errors::type_error("parameters", "a dict", p));
                }
            }
        }
        let server = Arc::clone(&self.inner);
        let response = block_on(py, async move { server.infer(request).await })?.or_py(py)?;
        let outputs = tensors_to_dict(py, &response.outputs)?;
        Ok(outputs)
    }

    /// Routes `name`'s traffic: `version` as the primary, `canary_percent` of requests to
    /// `canary_version` (by routing key when a request has one), and every request mirrored
    /// to `shadow_version`.
    #[pyo3(signature = (name, version, canary_version=None, canary_percent=0, shadow_version=None))]
    fn set_routing(
        &self,
        py: Python<'_>,
        name: &str,
        version: u64,
        canary_version: Option<u64>,
        canary_percent: u8,
        shadow_version: Option<u64>,
    ) -> PyResult<()> {
        let name = model_name(py, name)?;
        let mut routing = Routing::to(Version::new(version).or_py(py)?);
        if let Some(c) = self::version(py, canary_version)? {
            if !(1..=100).contains(&canary_percent) {
                return Err(crate::errors::to_py(
                    py,
                    &mlops::Error::invalid(
                        "canary_percent",
                        format!("{canary_percent} is not a share of traffic from 1 to 100"),
                    ),
                ));
            }
            routing = routing.with_canary(c, canary_percent);
        } else if canary_percent != 0 {
            return Err(crate::errors::to_py(
                py,
                &mlops::Error::invalid("canary_percent", "a canary share needs canary_version"),
            ));
        }
        if let Some(s) = self::version(py, shadow_version)? {
            routing = routing.with_shadow(s);
        }
        let server = Arc::clone(&self.inner);
        py.detach(move || server.set_routing(&name, routing))
            .or_py(py)
    }

    /// Sends all of `name`'s traffic to its default version again.
    fn clear_routing(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        let name = model_name(py, name)?;
        self.inner.clear_routing(&name).or_py(py)
    }

    /// The server's metrics in Prometheus' text format.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        self.inner.render_metrics().or_py(py)
    }

    /// Serves the Open Inference Protocol over HTTP on `host`:`port` (0 picks a free port)
    /// from background threads, until the returned handle's `stop()` (or the end of its
    /// `with` block, or the handle's collection). `bearer_token` requires
    /// `Authorization: Bearer <token>` on every request.
    #[pyo3(signature = (host="127.0.0.1", port=0, bearer_token=None))]
    fn serve(
        &self,
        py: Python<'_>,
        host: &str,
        port: u16,
        bearer_token: Option<String>,
    ) -> PyResult<HttpServer> {
        let mut options = HttpOptions::default();
        if let Some(token) = bearer_token {
            options = options.with_bearer_token(mlops::secret::SecretString::from(token));
        }
        let router = mlops::serve::model_server_router(Arc::clone(&self.inner), options);
        let address = format!("{host}:{port}");
        let runtime = runtime()?;
        let listener = block_on(py, async move {
            tokio::net::TcpListener::bind(&address)
                .await
                .map_err(|e| mlops::Error::unavailable(format!("cannot listen on {address}: {e}")))
        })?
        .or_py(py)?;
        let local = listener
            .local_addr()
            .map_err(|e| mlops::Error::backend("http", e))
            .or_py(py)?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(mlops::serve::http::serve(listener, router, async move {
            let _ = stopped.await;
        }));
        Ok(HttpServer {
            host: local.ip().to_string(),
            port: local.port(),
            pid: std::process::id(),
            running: Mutex::new(Some((stop, task))),
        })
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let server = Arc::clone(&self.inner);
        let names: Vec<String> = block_on(py, async move { server.list_models().await })
            .ok()
            .and_then(Result::ok)
            .map(|states| {
                states
                    .into_iter()
                    .map(|s| match s.version {
                        Some(v) => format!("{}/{v}", s.name),
                        None => s.name,
                    })
                    .collect()
            })
            .unwrap_or_default();
        format!("mlops.Server(models={names:?})")
    }
}

type Running = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<mlops::Result<()>>,
);

/// A running HTTP endpoint: `url`, `port`, `stop()`; a context manager that stops it on exit.
#[pyclass(module = "mlops._native", frozen)]
pub(crate) struct HttpServer {
    host: String,
    port: u16,
    /// The process serving: a forked child has the handle but not the threads.
    pid: u32,
    running: Mutex<Option<Running>>,
}

#[pymethods]
impl HttpServer {
    /// The address it listens on.
    #[getter]
    fn host(&self) -> String {
        self.host.clone()
    }

    /// The port it listens on.
    #[getter]
    fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`.
    #[getter]
    fn url(&self) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}", self.host, self.port)
        } else {
            format!("http://{}:{}", self.host, self.port)
        }
    }

    /// Whether it still serves (never in a forked child: the server's threads are the
    /// parent's).
    #[getter]
    fn running(&self) -> bool {
        self.pid == std::process::id()
            && self
                .running
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(|(_, task)| !task.is_finished())
    }

    /// Stops accepting connections, lets requests in flight finish, and returns when it has
    /// stopped. Stopping a stopped server does nothing.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some((stop, task)) = taken else {
            return Ok(());
        };
        if self.pid != std::process::id() {
            // The parent's server: nothing of it runs here, and its task is the parent's.
            std::mem::forget((stop, task));
            return Ok(());
        }
        let _ = stop.send(());
        match block_on(py, task)? {
            Ok(result) => result.or_py(py),
            Err(join) => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "mlops: the HTTP server failed: {join}"
            ))),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<()> {
        self.stop(py)
    }

    fn __repr__(&self) -> String {
        format!(
            "<HttpServer: {} ({})>",
            self.url(),
            if self.running() { "running" } else { "stopped" }
        )
    }
}
