//! The Open Inference Protocol v2 REST API over axum, for any [`Server`].

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mlops_core::serve::{LoadOptions, Server};
use mlops_core::{Error, ErrorKind, ModelName, ModelUri, Version};
use serde_json::json;

use crate::codec;

/// Produces the `/metrics` page (Prometheus text format 0.0.4).
pub type MetricsSource = Arc<dyn Fn() -> mlops_core::Result<String> + Send + Sync>;

/// Options of the HTTP transport.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Largest request body accepted (default 64 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Requests must carry `Authorization: Bearer <token>` (health endpoints stay open).
    pub bearer_token: Option<mlops_core::secret::SecretString>,
    /// An inference waiting longer than this is answered 504 (default 30 s). Batched models
    /// are waited on and time out; an unbatched prediction runs to completion.
    pub request_timeout: Option<std::time::Duration>,
    /// What `/metrics` serves; absent, the route answers 404.
    pub metrics: Option<MetricsSource>,
    /// Inference and repository requests worked on at once (default 512); more get 503 with
    /// `Retry-After` at once instead of queueing.
    pub max_in_flight: usize,
    /// Bytes of request bodies held in memory at once, over all requests (default 512 MiB);
    /// a body the budget cannot cover now gets 503 with `Retry-After`.
    pub max_body_memory: usize,
    /// A request body not complete this long after its request was admitted is answered 408
    /// (default 30 s).
    pub body_read_timeout: Option<std::time::Duration>,
    /// What answers `POST /v2/models/{name}/explain`; absent, the route answers 501.
    pub explainer: Option<Arc<dyn mlops_core::serve::Explainer>>,
}

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("bearer_token", &self.bearer_token)
            .field("request_timeout", &self.request_timeout)
            .field("metrics", &self.metrics.is_some())
            .field("max_in_flight", &self.max_in_flight)
            .field("max_body_memory", &self.max_body_memory)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("explainer", &self.explainer)
            .finish()
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 << 20,
            bearer_token: None,
            request_timeout: Some(std::time::Duration::from_secs(30)),
            metrics: None,
            max_in_flight: 512,
            max_body_memory: 512 << 20,
            body_read_timeout: Some(std::time::Duration::from_secs(30)),
            explainer: None,
        }
    }
}

impl HttpOptions {
    /// Requires this bearer token.
    pub fn with_bearer_token(mut self, token: mlops_core::secret::SecretString) -> Self {
        self.bearer_token = Some(token);
        self
    }

    /// Sets the body limit.
    pub fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets the inference timeout.
    pub fn with_request_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.request_timeout = t;
        self
    }

    /// Sets how many inference and repository requests are worked on at once.
    pub fn with_max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n;
        self
    }

    /// Sets the budget of request-body bytes held in memory at once.
    pub fn with_max_body_memory(mut self, bytes: usize) -> Self {
        self.max_body_memory = bytes;
        self
    }

    /// Sets how long a request body may take to arrive.
    pub fn with_body_read_timeout(mut self, t: Option<std::time::Duration>) -> Self {
        self.body_read_timeout = t;
        self
    }

    /// Answers `POST /v2/models/{name}/explain` with `explainer`.
    pub fn with_explainer(mut self, explainer: Arc<dyn mlops_core::serve::Explainer>) -> Self {
        self.explainer = Some(explainer);
        self
    }

    /// Serves `/metrics` from `source`.
    pub fn with_metrics(mut self, source: MetricsSource) -> Self {
        self.metrics = Some(source);
        self
    }
}

#[derive(Clone)]
struct AppState {
    server: Arc<dyn Server>,
    /// Shared: handlers clone the state per request.
    options: Arc<HttpOptions>,
}

type Shared = AppState;

/// An error as the protocol answers it: a status and `{"error": "..."}`.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = if self.0.is_timeout() {
            StatusCode::GATEWAY_TIMEOUT
        } else {
            match self.0.kind() {
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::PolicyDenied | ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
                ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                ErrorKind::NotSupported => StatusCode::NOT_IMPLEMENTED,
                ErrorKind::AlreadyExists | ErrorKind::Conflict => StatusCode::CONFLICT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            }
        };
        (status, axum::Json(json!({"error": self.0.to_string()}))).into_response()
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// The router: every endpoint of the protocol's REST API plus KServe's model list and
/// repository load/unload.
///
/// Inference and repository requests pass admission control first ([`HttpOptions`]'s
/// `max_in_flight`, `max_body_memory`, `body_read_timeout`); health, metadata and `/metrics`
/// stay answerable under load.
pub fn router(server: Arc<dyn Server>, options: HttpOptions) -> Router {
    let max_body = options.max_body_bytes;
    let admission = Arc::new(crate::admission::Admission::new(
        options.max_in_flight,
        options.max_body_memory,
        max_body,
        options.body_read_timeout,
    ));
    let state = AppState {
        server,
        options: Arc::new(options),
    };
    let open = Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .with_state(state.clone());
    let admitted = Router::new()
        .route("/v2/models/{model}/infer", post(infer))
        .route(
            "/v2/models/{model}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v2/models/{model}/explain", post(explain))
        .route(
            "/v2/models/{model}/versions/{version}/explain",
            post(explain_version),
        )
        .route("/v2/repository/models/{model}/load", post(load))
        .route("/v2/repository/models/{model}/unload", post(unload))
        .layer(axum::middleware::from_fn_with_state(
            admission,
            crate::admission::admit,
        ));
    let guarded = Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/models", get(list_models))
        .route("/v2/models/{model}", get(model_metadata))
        .route(
            "/v2/models/{model}/versions/{version}",
            get(model_version_metadata),
        )
        .route("/v2/models/{model}/ready", get(model_ready))
        .route(
            "/v2/models/{model}/versions/{version}/ready",
            get(model_version_ready),
        )
        .merge(admitted)
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authorize,
        ))
        .with_state(state);
    open.merge(guarded)
        .fallback(unmatched)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::map_response(json_errors))
        .layer(DefaultBodyLimit::max(max_body))
}

/// No route: the protocol's 404, as JSON like every other error.
async fn unmatched(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": format!("no route {}", uri.path())})),
    )
        .into_response()
}

/// A route that exists, asked with the wrong method (axum adds the `Allow` header).
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(json!({"error": format!("{method} is not allowed on {}", uri.path())})),
    )
        .into_response()
}

/// Every error answer is JSON: the ones axum and its extractors write as plain text (a body
/// over the limit: 413; a malformed path or header) become `{"error": <their text>}` with the
/// same status and headers.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The texts are short; a longer one is not buffered: the status's reason phrase stands in.
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(body))
}

/// Checks `Authorization: Bearer <token>` when a token is configured (constant-time compare).
async fn authorize(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(token) = &state.options.bearer_token {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !mlops_core::secret::bearer_matches(given, token) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(json!({"error": "missing or wrong bearer token"})),
            )
                .into_response();
        }
    }
    next.run(request).await
}

async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let Some(source) = &state.options.metrics else {
        return Err(Error::not_found("route", "/metrics").into());
    };
    let text = source()?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn live(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(json!({"live": st.server.live().await?})))
}

async fn ready(State(st): State<Shared>) -> ApiResult<Response> {
    let ready = st.server.ready().await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"ready": ready}))).into_response())
}

async fn server_metadata(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(st.server.metadata().await?))
}

async fn list_models(State(st): State<Shared>) -> ApiResult<impl IntoResponse> {
    let mut names: Vec<String> = st
        .server
        .list_models()
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();
    names.dedup();
    Ok(axum::Json(json!({"models": names})))
}

/// A model name from the path. A name that is not a valid model name cannot be served: the
/// protocol's answer is 404, as for any unknown model.
fn model_name(raw: &str) -> Result<ModelName, Error> {
    raw.parse()
        .map_err(|e: Error| Error::not_found("model", raw).with_source(e))
}

/// A version from the path; one that is not a version number is not served either (404).
fn model_version(model: &str, raw: &str) -> Result<Version, Error> {
    raw.parse().map_err(|e: Error| {
        Error::not_found("model version", format!("{model} v{raw}")).with_source(e)
    })
}

async fn model_metadata(
    State(st): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(
        st.server.model_metadata(&model_name(&model)?, None).await?,
    ))
}

async fn model_version_metadata(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let version = model_version(&model, &version)?;
    Ok(axum::Json(
        st.server
            .model_metadata(&model_name(&model)?, Some(version))
            .await?,
    ))
}

async fn ready_answer(st: &Shared, model: &str, version: Option<&str>) -> ApiResult<Response> {
    let version = version.map(|v| model_version(model, v)).transpose()?;
    let ready = st.server.model_ready(&model_name(model)?, version).await?;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, axum::Json(json!({"name": model, "ready": ready}))).into_response())
}

async fn model_ready(State(st): State<Shared>, Path(model): Path<String>) -> ApiResult<Response> {
    ready_answer(&st, &model, None).await
}

async fn model_version_ready(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
) -> ApiResult<Response> {
    ready_answer(&st, &model, Some(&version)).await
}

async fn infer(
    State(st): State<Shared>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&st, &model, None, &headers, body).await
}

async fn infer_version(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_infer(&st, &model, Some(&version), &headers, body).await
}

async fn explain(
    State(st): State<Shared>,
    Path(model): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_explain(&st, &model, None, &headers, body).await
}

async fn explain_version(
    State(st): State<Shared>,
    Path((model, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    run_explain(&st, &model, Some(&version), &headers, body).await
}

/// An explain request: decoded as an inference request, answered by the configured
/// [`Explainer`](mlops_core::serve::Explainer) on a blocking thread, its model calls going
/// through the server (validation, batching) and pinned to the version that answered first.
async fn run_explain(
    st: &Shared,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let explainer = st.options.explainer.clone().ok_or_else(|| {
        Error::not_supported(
            "endpoint",
            "explain",
            "this server has no explainer (start it with `mlops serve --explain`)",
        )
    })?;
    let mut request = decode(model, version, headers, &body)?;
    let (outputs, params) = codec::response_options(&request);
    let server = Arc::clone(&st.server);
    // Routed once, as any request naming no version is (canary split, routing key), and then
    // pinned: every coalition reaches the version that answered.
    if request.model_version.is_none() {
        let mut probe = mlops_core::serve::InferRequest::new(
            request.model_name.clone(),
            request.inputs.clone(),
        );
        probe.parameters = request.parameters.clone();
        probe
            .parameters
            .insert(crate::SYNTHETIC.to_string(), serde_json::Value::Bool(true));
        request.model_version = server.infer(probe).await?.model_version;
    }
    let handle = tokio::runtime::Handle::current();
    // Set when this handler is dropped (the client went away, or the timeout below fired):
    // the explainer's next model call fails and the blocking work ends.
    let cancelled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancelled));
    let work = tokio::task::spawn_blocking(move || {
        let infer =
            |inputs: Vec<mlops_core::Tensor>| -> mlops_core::Result<Vec<mlops_core::Tensor>> {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(Error::unavailable(
                        "explain request cancelled: the client left or the request timed out",
                    ));
                }
                let mut call =
                    mlops_core::serve::InferRequest::new(request.model_name.clone(), inputs);
                call.model_version = request.model_version;
                call.parameters
                    .insert(crate::SYNTHETIC.to_string(), serde_json::Value::Bool(true));
                Ok(handle.block_on(server.infer(call))?.outputs)
            };
        let mut response = explainer.explain(&request, &infer)?;
        response.model_version = request.model_version;
        Ok::<_, Error>(response)
    });
    let response = match st.options.request_timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::timed_out("explain request", limit))?,
        None => work.await,
    }
    .map_err(|e| Error::backend("explain thread", e))??;
    encoded(codec::encode_response(&outputs, &params, &response)?)
}

/// Sets its flag when dropped.
struct CancelOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// An inference request from its HTTP parts (JSON, or JSON and binary tensors).
fn decode(
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> mlops_core::Result<mlops_core::serve::InferRequest> {
    let json_len = match headers.get(codec::HEADER_LENGTH) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid(
                        "request",
                        "Inference-Header-Content-Length is not a byte count",
                    )
                })?,
        ),
    };
    let version = version.map(|v| model_version(model, v)).transpose()?;
    let mut request = codec::decode_request(model_name(model)?, version, body, json_len)?;
    // Only in-process callers (the explain endpoint) mark requests synthetic.
    request.parameters.remove(crate::SYNTHETIC);
    if let Some(key) = headers.get("x-routing-key").and_then(|v| v.to_str().ok()) {
        request
            .parameters
            .insert(crate::ROUTING_KEY.to_string(), serde_json::Value::from(key));
    }
    Ok(request)
}

async fn run_infer(
    st: &Shared,
    model: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let request = decode(model, version, headers, &body)?;
    let (outputs, params) = codec::response_options(&request);
    let response = match st.options.request_timeout {
        Some(limit) => tokio::time::timeout(limit, st.server.infer(request))
            .await
            .map_err(|_| Error::timed_out("inference request", limit))??,
        None => st.server.infer(request).await?,
    };
    encoded(codec::encode_response(&outputs, &params, &response)?)
}

/// The HTTP response of an encoded inference response.
fn encoded(encoded: codec::EncodedResponse) -> ApiResult<Response> {
    let mut http = Response::new(axum::body::Body::from(encoded.body));
    match encoded.json_len {
        Some(n) => {
            http.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            http.headers_mut()
                .insert(codec::HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            http.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(http)
}

/// KServe's repository load: the body may name a `models:/` URI (`{"uri": "models:/m@champion"}`);
/// without one the registry's latest version of the model is loaded.
async fn load(
    State(st): State<Shared>,
    Path(model): Path<String>,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    let mut options = LoadOptions::default();
    if !body.is_empty() {
        let doc: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Error::invalid("request", "malformed JSON").with_source(e))?;
        if let Some(uri) = doc.get("uri").and_then(|u| u.as_str()) {
            options = LoadOptions::from_uri(uri.parse::<ModelUri>()?);
        }
    }
    st.server.load(&model.parse()?, options).await?;
    Ok(axum::Json(json!({"name": model, "load": true})))
}

async fn unload(
    State(st): State<Shared>,
    Path(model): Path<String>,
) -> ApiResult<impl IntoResponse> {
    st.server.unload(&model_name(&model)?, None).await?;
    Ok(axum::Json(json!({"name": model, "unload": true})))
}

/// Options of the connections [`serve_with`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionOptions {
    /// A connection must deliver a request's complete headers within this time of starting to
    /// wait for them (default 30 s), else it is closed. That wait starts when a connection is
    /// accepted and again after every response, so it also closes idle keep-alive connections
    /// — no client can hold a connection open by sending nothing or trickling headers (a slow
    /// body is bounded by [`HttpOptions::body_read_timeout`]).
    pub header_read_timeout: std::time::Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: std::time::Duration::from_secs(30),
        }
    }
}

impl ConnectionOptions {
    /// Sets the header-read (and idle) timeout.
    pub fn with_header_read_timeout(mut self, t: std::time::Duration) -> Self {
        self.header_read_timeout = t;
        self
    }
}

/// Serves `router` on `listener` with the default [`ConnectionOptions`] until `shutdown`
/// resolves, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> mlops_core::Result<()> {
    serve_with(listener, router, ConnectionOptions::default(), shutdown).await
}

/// Serves `router` on `listener` over HTTP/1.1 until `shutdown` resolves: then it stops
/// accepting, lets every connection finish the request it is on (idle ones close at once),
/// and returns when all have.
///
/// axum's own `serve` gives hyper no timer, so a connection that never completes its headers,
/// or idles between requests, is never closed; this loop gives hyper tokio's timer and the
/// header-read timeout of `options`.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    options: ConnectionOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> mlops_core::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true);
    crate::accept::serve_connections(
        listener,
        "http",
        |stream| {
            builder.serve_connection(
                TokioIo::new(stream),
                TowerToHyperService::new(router.clone()),
            )
        },
        shutdown,
    )
    .await;
    Ok(())
}

/// The router for a [`ModelServer`](crate::ModelServer), with its `/metrics`.
pub fn model_server_router(server: Arc<crate::ModelServer>, options: HttpOptions) -> Router {
    let metrics_server = Arc::clone(&server);
    let options = options.with_metrics(Arc::new(move || metrics_server.render_metrics()));
    router(server, options)
}
